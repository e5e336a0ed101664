-- Per segment: its customers and their average features.
with

segments as (
    select * from {{ ref('customer_segments') }}
),

customers as (
    select * from {{ ref('stg_customers') }}
)

select
    segments.segment_id,
    count(*) as customers,
    avg(customers.age) as mean_age,
    avg(customers.annual_income_k) as mean_annual_income_k,
    avg(customers.spending_score) as mean_spending_score,
    count(*) filter (where customers.gender = 'Female') / count(*) as female_share
from segments
inner join customers
    on segments.customer_id = customers.customer_id
group by segments.segment_id
order by segments.segment_id
