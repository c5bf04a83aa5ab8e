SELECT o.id AS order_id, o.created_at, o.status,
       COALESCE(SUM(i.quantity * i.unit_price_cents), 0) AS total_cents
FROM orders o
LEFT JOIN order_items i ON i.order_id = o.id
WHERE o.customer_id = :customer_id
GROUP BY o.id, o.created_at, o.status
ORDER BY o.created_at DESC, o.id DESC
LIMIT 5;
