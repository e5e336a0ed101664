-- One row per staged customer: every declared column, cleaned, and the segment they belong to.
with

customers as (
    select * from staging.stg_customers
),

assignments as (
    select * from ml.customer_segments
)

select
    customers.customer_id,  -- Customer id from the landing files
    each(customers, customers._),  -- {column} ({declared})
    assignments.segment_id,  -- The customer's segment (nearest centroid)
    assignments.segment_name,  -- The segment's readable name
    assignments.distance_to_centroid,  -- Distance to the segment centroid in scaled units
    assignments.silhouette,  -- The customer's silhouette value (-1..1)
    assignments.runner_up_segment_id,  -- The second-nearest segment
    assignments.runner_up_segment_name,  -- The runner-up segment's name
    assignments.margin  -- Distance to the runner-up centroid minus distance to the own centroid
from customers
left join assignments
    on customers.customer_id = assignments.customer_id
order by customers.customer_id
