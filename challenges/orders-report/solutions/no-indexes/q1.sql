SELECT c.id AS customer_id, c.email, SUM(i.quantity * i.unit_price_cents) AS total_cents
FROM customers c
JOIN orders o ON o.customer_id = c.id
JOIN order_items i ON i.order_id = o.id
WHERE o.status = 'paid'
GROUP BY c.id, c.email
ORDER BY total_cents DESC, c.id
LIMIT 10;
