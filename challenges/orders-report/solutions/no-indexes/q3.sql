SELECT substr(o.created_at, 1, 7) AS month, p.category,
       SUM(i.quantity * i.unit_price_cents) AS revenue_cents
FROM orders o
JOIN order_items i ON i.order_id = o.id
JOIN products p ON p.id = i.product_id
WHERE o.status = 'paid' AND substr(o.created_at, 1, 4) = :year
GROUP BY 1, 2
ORDER BY 1, 2;
