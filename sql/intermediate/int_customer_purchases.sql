-- One row per purchase of a customer: a day with a purchase order, up to the observation's end
-- (the day before transactions.snapshot_date), valued after the returns that took part of it
-- back. Several orders on one day are one purchase, as the customer value models count them.
with

orders as (
    select * from intermediate.int_orders
),

customers as (
    select * from intermediate.int_customer_orders
),

observation as (
    select max(snapshot_date) - 1 as observation_end
    from customers
),

-- Values are summed as decimals (as int_customer_orders does). The difference is taken in 37
-- digits so that it keeps all 10 decimals in 38 (Spark would drop one).
purchases as (
    select
        orders.customer_id,
        orders.order_day,
        sum(
            cast(orders.purchase_value as decimal(37, 10))
            - cast(orders.returned_value as decimal(37, 10))
        ) as purchase_value
    from orders
    cross join observation
    where orders.is_purchase_order
        and orders.purchase_lines > 0
        and orders.order_day <= observation.observation_end
    group by orders.customer_id, orders.order_day
)

select
    customer_id,  -- The customer (intermediate.int_orders)
    order_day as purchase_date,  -- The day of the purchase
    cast(
        row_number() over (partition by customer_id order by order_day) as bigint
    ) as purchase_number,  -- 1 for the customer's first purchase, 2 for the next …
    purchase_value  -- The value of the day's purchase orders after their returns
from purchases
order by customer_id, purchase_date
