-- One row per customer, order and day the order has lines on: whether the order is a purchase
-- order, and what its lines are worth once returns are matched to the purchases they return.
-- A return takes back the same customer's latest earlier purchases of the same product first
-- (last in, first out; in units where quantity is mapped, else in value; without a product_id,
-- over all the customer's lines). An order whose purchases its later returns took back in full is
-- cancelled: it is not a purchase order. The part of a return that no earlier purchase explains
-- (something bought before the data begins) is unmatched.
with

lines as (
    select * from staging.stg_transactions
),

settings as (
    select * from config.order_settings
),

-- Values are summed as decimals (each line's value to 10 decimal places): a sum of doubles
-- depends on the order DuckDB's threads add them in, and so would every figure after it. Sums are
-- divided as doubles (Spark would round a decimal quotient to 6 places), and two of them are
-- added in 37 digits, so that the result keeps all 10 decimals in 38 (Spark would drop one).
-- Each line moves the stock of its product (bought and not yet returned) by its weight.
weighted as (
    select
        lines.*,
        cast(line_value as decimal(38, 10)) as exact_value,
        case
            when lines.is_purchase or lines.is_return
                then cast(
                    abs(
                        case
                            when is_mapped(transactions, quantity) then lines.quantity
                            else lines.line_value
                        end
                    ) as decimal(38, 10)
                )
            else cast(0 as decimal(38, 10))
        end as weight,
        coalesce(lines.product_id, '') as product_key,
        cast(lines.order_date as date) as order_day
    from lines
),

returned_products as (
    select distinct customer_id, product_key
    from weighted
    where is_return
),

-- Only the products a customer returned need matching: every other line keeps what it bought.
in_play as (
    select weighted.*
    from weighted
    semi join returned_products
        on weighted.customer_id = returned_products.customer_id
        and weighted.product_key = returned_products.product_key
),

moves as (
    select
        in_play.*,
        case when is_return then -weight else weight end as stock_change,
        row_number() over (
            partition by customer_id, product_key
            order by order_date, is_return, source_file, line_number
        ) as sequence
    from in_play
),

running as (
    select
        moves.*,
        sum(stock_change) over (
            partition by customer_id, product_key
            order by sequence
            rows between unbounded preceding and current row
        ) as running_total
    from moves
),

-- The lowest the running total has been is what returns took beyond the purchases before them:
-- the stock is the running total above that floor.
floored as (
    select
        running.*,
        least(
            cast(0 as decimal(38, 10)),
            min(running_total) over (
                partition by customer_id, product_key
                order by sequence
                rows between unbounded preceding and current row
            )
        ) as shortfall
    from running
),

stocked as (
    select
        floored.*,
        running_total - shortfall as stock,
        coalesce(
            lag(shortfall, 1) over (partition by customer_id, product_key order by sequence),
            cast(0 as decimal(38, 10))
        ) - shortfall as unmatched_weight
    from floored
),

-- A purchase's units sit on the stock between its level before and after it; later returns
-- take back the part above the lowest level the stock reaches after it.
matched as (
    select
        stocked.*,
        min(stock) over (
            partition by customer_id, product_key
            order by sequence
            rows between 1 following and unbounded following
        ) as lowest_later_stock
    from stocked
),

returned as (
    select
        matched.*,
        case
            when not is_purchase or weight = 0 then cast(0 as decimal(38, 10))
            else greatest(
                cast(0 as decimal(38, 10)),
                stock - greatest(stock - weight, coalesce(lowest_later_stock, stock))
            )
        end as returned_weight
    from matched
),

-- A share of a line is valued at its own price; a whole line keeps its exact value.
matched_lines as (
    select
        customer_id,
        order_id,
        source_file,
        line_number,
        case
            when returned_weight = weight then exact_value
            else cast(
                line_value * (cast(returned_weight as double) / cast(weight as double))
                as decimal(38, 10)
            )
        end as returned_value,
        case
            when not is_return or unmatched_weight = 0 then cast(0 as decimal(38, 10))
            when unmatched_weight = weight then -exact_value
            else cast(
                -line_value * (cast(unmatched_weight as double) / cast(weight as double))
                as decimal(38, 10)
            )
        end as unmatched_value
    from returned
),

line_values as (
    select
        weighted.customer_id,
        weighted.order_id,
        weighted.order_day,
        weighted.is_purchase,
        weighted.is_return,
        weighted.exact_value,
        coalesce(matched_lines.returned_value, 0) as returned_value,
        coalesce(matched_lines.unmatched_value, 0) as unmatched_value
    from weighted
    left join matched_lines
        on weighted.source_file = matched_lines.source_file
        and weighted.line_number = matched_lines.line_number
),

order_days as (
    select
        customer_id,
        order_id,
        order_day,
        count(*) filter (where is_purchase) as purchase_lines,
        coalesce(sum(exact_value) filter (where is_purchase), 0) as purchase_value,
        coalesce(sum(returned_value) filter (where is_purchase), 0) as returned_value,
        coalesce(
            -sum(
                cast(exact_value as decimal(37, 10)) + cast(unmatched_value as decimal(37, 10))
            ) filter (where is_return),
            0
        ) as return_value,
        coalesce(sum(unmatched_value), 0) as unmatched_return_value,
        count(*) filter (where unmatched_value > 0) as unmatched_return_lines
    from line_values
    group by customer_id, order_id, order_day
),

-- A purchase order: its products are worth more than what its later returns took back (or,
-- with transactions.free_purchases, its products were free).
orders as (
    select
        order_days.customer_id,
        order_days.order_id,
        sum(order_days.purchase_value) - sum(order_days.returned_value) > 0
        or (
            min(settings.counts_free_purchases)
            and sum(order_days.purchase_value) = 0
            and sum(order_days.purchase_lines) > 0
        ) as is_purchase_order,
        sum(order_days.purchase_value) > 0 as has_purchase_value
    from order_days
    cross join settings
    group by order_days.customer_id, order_days.order_id
)

select
    order_days.customer_id,  -- The customer (staging.stg_transactions)
    order_days.order_id,  -- The order
    order_days.order_day,  -- A day the order has lines on
    orders.is_purchase_order,  -- Its products are worth more than what its later returns took back (free ones count with transactions.free_purchases)
    orders.has_purchase_value and not orders.is_purchase_order
        as is_cancelled,  -- Its purchases were all taken back by later returns
    order_days.purchase_lines,  -- The order's purchase lines on the day
    order_days.purchase_value,  -- Their value, returns not subtracted
    order_days.returned_value,  -- The part of that value later returns took back
    order_days.return_value,  -- The value of the day's return lines matched to an earlier purchase, as a positive amount
    order_days.unmatched_return_value,  -- The value of the day's returns no earlier purchase in the data explains, as a positive amount
    order_days.unmatched_return_lines  -- Return lines with an unmatched part
from order_days
inner join orders
    on order_days.customer_id = orders.customer_id
    and order_days.order_id = orders.order_id
order by order_days.customer_id, order_days.order_id, order_days.order_day
