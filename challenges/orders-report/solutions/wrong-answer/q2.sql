-- Wrong: the inner join drops orders without items, and ties on created_at are not broken.
SELECT o.id AS order_id, o.created_at, o.status, SUM(i.quantity * i.unit_price_cents) AS total_cents
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.customer_id = :customer_id
GROUP BY o.id, o.created_at, o.status
ORDER BY o.created_at DESC
LIMIT 5;
