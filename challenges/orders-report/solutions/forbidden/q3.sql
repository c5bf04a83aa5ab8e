-- Paid revenue of one year per month and category; a range on created_at keeps it sargable.
SELECT substr(o.created_at, 1, 7) AS month, p.category,
       SUM(i.quantity * i.unit_price_cents) AS revenue_cents
FROM orders o
JOIN order_items i ON i.order_id = o.id
JOIN products p ON p.id = i.product_id
WHERE o.status = 'paid'
  AND o.created_at >= :year || '-01-01'
  AND o.created_at < (CAST(:year AS INTEGER) + 1) || '-01-01'
GROUP BY substr(o.created_at, 1, 7), p.category
ORDER BY month, p.category;
