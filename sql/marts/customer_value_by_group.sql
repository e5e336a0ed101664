-- Customer value per segment and per RFM group: how many customers, how many of them are
-- expected to be still active, and the total and mean lifetime value (marts.customer_value).
with

customers as (
    select * from marts.customer_value
),

-- Each customer twice: once under their segment, once under their RFM group.
grouped as (
    select
        'segment' as grouping,
        coalesce(segment_name, 'not segmented') as group_name,
        segment_id,
        probability_alive,
        customer_lifetime_value
    from customers
    union all
    select
        'rfm_group' as grouping,
        coalesce(rfm_group, 'no RFM group') as group_name,
        cast(null as integer) as segment_id,
        probability_alive,
        customer_lifetime_value
    from customers
)

select
    grouping,  -- segment or rfm_group: what group_name names
    group_name,  -- The segment's or RFM group's name
    min(segment_id) as segment_id,  -- The segment's id (segment rows)
    count(*) as customers,  -- Customers with a purchase in the group
    repeatable_sum(probability_alive) as expected_active_customers,  -- The sum of their probabilities of being still active
    repeatable_mean(probability_alive) as mean_probability_alive,  -- Its mean
    repeatable_sum(customer_lifetime_value) as total_lifetime_value,  -- The sum of their customer lifetime values (value.clv_horizon_days)
    repeatable_mean(customer_lifetime_value) as mean_lifetime_value  -- Its mean
from grouped
group by grouping, group_name
order by grouping, total_lifetime_value desc nulls last, group_name
