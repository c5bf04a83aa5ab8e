-- The 10 customers with the highest paid total; ties by customer id.
-- "+ 0" keeps SQLite from walking orders by customer (which would read order_items in random
-- order): paid orders are read in time order, which is id order, so order_items pages are read
-- once each.
SELECT c.id AS customer_id, c.email, t.total_cents
FROM (SELECT o.customer_id + 0 AS customer_id, SUM(i.quantity * i.unit_price_cents) AS total_cents
      FROM orders o
      JOIN order_items i ON i.order_id = o.id
      WHERE o.status = 'paid'
      GROUP BY 1) AS t
JOIN customers c ON c.id = t.customer_id
ORDER BY t.total_cents DESC, c.id ASC
LIMIT 10;
