-- A customer's 5 most recent orders with their totals (0 for an order without items).
SELECT o.id AS order_id, o.created_at, o.status,
       COALESCE((SELECT SUM(i.quantity * i.unit_price_cents)
                 FROM order_items i WHERE i.order_id = o.id), 0) AS total_cents
FROM orders o
WHERE o.customer_id = :customer_id
ORDER BY o.created_at DESC, o.id DESC
LIMIT 5;
