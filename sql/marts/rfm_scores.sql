-- Classic RFM scores for every customer with a purchase: recency (R), frequency (F) and
-- monetary (M) quintiles 1-5, where 5 is the most recent, most frequent, highest spending fifth,
-- and the named RFM group their R and F scores fall in (transactions.rfm_groups; see
-- config.rfm_groups). Customers with equal values share a score, so a value many customers share
-- (one order, say) can make its quintile larger than a fifth.
with

orders as (
    select * from intermediate.int_customer_orders
    where has_purchase
),

rfm_map as (
    select * from config.rfm_groups
),

ranked as (
    select
        customer_id,
        recency_days,
        frequency,
        monetary,
        rank() over (order by recency_days desc) as recency_rank,
        rank() over (order by frequency) as frequency_rank,
        rank() over (order by monetary) as monetary_rank,
        count(*) over () as customers
    from orders
),

scored as (
    select
        customer_id,
        recency_days,
        frequency,
        monetary,
        1 + cast(floor(5.0 * (recency_rank - 1) / customers) as integer) as recency_score,
        1 + cast(floor(5.0 * (frequency_rank - 1) / customers) as integer) as frequency_score,
        1 + cast(floor(5.0 * (monetary_rank - 1) / customers) as integer) as monetary_score
    from ranked
)

select
    scored.customer_id,  -- The customer (intermediate.int_customer_orders)
    scored.recency_days,  -- Days from the last purchase to the snapshot date
    scored.frequency,  -- Distinct purchase orders
    scored.monetary,  -- Net value, returns subtracted
    scored.recency_score,  -- R: 1 (longest ago) to 5 (most recent fifth)
    scored.frequency_score,  -- F: 1 (fewest orders) to 5 (most)
    scored.monetary_score,  -- M: 1 (lowest net value) to 5 (highest)
    'R' || scored.recency_score || 'F' || scored.frequency_score || 'M' || scored.monetary_score
        as rfm_cell,  -- The three scores in one label, such as R5F4M3
    rfm_map.rfm_group  -- The named RFM group of the R and F scores (transactions.rfm_groups)
from scored
inner join rfm_map
    on scored.recency_score between rfm_map.recency_min and rfm_map.recency_max
    and scored.frequency_score between rfm_map.frequency_min and rfm_map.frequency_max
order by scored.customer_id
