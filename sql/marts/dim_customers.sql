-- One row per staged customer: the cleaned attributes and the segment they belong to.
with

customers as (
    select * from staging.stg_customers
),

assignments as (
    select * from ml.customer_segments
)

select
    customers.customer_id,
    customers.gender,
    customers.age,
    customers.annual_income_k,
    customers.spending_score,
    assignments.segment_id,
    assignments.segment_name,
    assignments.distance_to_centroid,
    assignments.silhouette,
    assignments.runner_up_segment_id,
    assignments.runner_up_segment_name,
    assignments.margin
from customers
left join assignments
    on customers.customer_id = assignments.customer_id
order by customers.customer_id
