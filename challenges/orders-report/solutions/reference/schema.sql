-- Reference indexes: q2/q4 search orders by customer and time, q3 ranges over paid orders
-- by time, every question reads order_items through one covering index.
CREATE INDEX orders_customer_created ON orders (customer_id, created_at);
CREATE INDEX orders_status_created ON orders (status, created_at, customer_id);
CREATE INDEX orders_created_customer ON orders (created_at, customer_id);
CREATE INDEX order_items_order_cover ON order_items (order_id, product_id, quantity, unit_price_cents);
ANALYZE;
