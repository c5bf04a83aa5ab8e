SELECT COUNT(*) AS n
FROM customers
WHERE id NOT IN (SELECT customer_id FROM orders WHERE created_at >= :since);
