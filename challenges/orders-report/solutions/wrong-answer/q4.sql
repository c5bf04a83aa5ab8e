-- Customers without any order created at or after :since (including those who never ordered).
SELECT COUNT(*) AS n
FROM customers c
WHERE c.id NOT IN (SELECT o.customer_id FROM orders o WHERE o.created_at >= :since);
