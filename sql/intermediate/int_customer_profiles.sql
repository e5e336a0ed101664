-- One row per customer known to any source: the customers source's columns, the order lines'
-- per-customer aggregates and attributes, joined on customer_id; and whether the customer can be
-- segmented, with the reason when not (returns only, only zero-value lines, a feature missing or
-- not transformable).
-- Stored in no particular order: ORDER BY customer_id when the order matters.
with

customers as (
    select * from staging.stg_customers
),

orders as (
    select * from intermediate.int_customer_orders
),

joined as (
    select
        coalesce(customers.customer_id, orders.customer_id) as customer_id,
        customers.customer_id is not null as in_customers,
        orders.customer_id is not null as in_orders,
        orders.has_purchase,
        orders.return_orders,
        orders.cancelled_orders,
        orders.non_product_lines,
        orders.order_lines,
        each(customers, customers._),
        each(transactions, orders._),
        each(order_aggregates, orders._)
    from customers
    full outer join orders
        on customers.customer_id = orders.customer_id
),

-- Which source a missing feature would have come from, for the reason below.
sourced as (
    select
        joined.*,
        case
            when not in_orders and is_mapped(transactions, customer_id)
                then ' (no staged order lines)'
            when not in_customers and is_mapped(customers, customer_id)
                then ' (not in the customers source)'
            else ''
        end as missing_from
    from joined
),

checked as (
    select
        sourced.*,
        coalesce(
            case
                when in_orders and not has_purchase and cancelled_orders > 0
                    then 'every order cancelled in full: no purchase order left'
                when in_orders and not has_purchase and return_orders > 0
                    then 'returns only: no purchase order'
                when in_orders and not has_purchase and non_product_lines = order_lines
                    then 'no purchase: only non-product lines (transactions.non_product_codes)'
                when in_orders and not has_purchase
                    then 'no purchase: only lines of zero value'
            end,
            each(features, case when _ is null then '_' || ' is missing' || missing_from end),
            each(
                features,
                case
                    when not isfinite(transformed(_))
                        then '_' || ' ' || _ || ' cannot be transformed (log1p needs a value above -1)'
                end
            )
        ) as unsegmented_reason
    from sourced
)

-- No ORDER BY: at 10M customers the sort doubled the model.
select
    customer_id,  -- The customer, from either source
    each(profile, _),  -- {column} ({declared})
    in_customers,  -- The customer is in staging.stg_customers
    in_orders,  -- The customer has staged order lines (staging.stg_transactions)
    unsegmented_reason is null as is_segmented,  -- Every feature is there and can be transformed: the customer is segmented
    unsegmented_reason  -- Why the customer is not segmented; null when they are
from checked
