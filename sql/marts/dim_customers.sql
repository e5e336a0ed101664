-- One row per customer known to any source: their profile (declared columns, order aggregates)
-- and the segment they belong to; a customer who is not segmented says why.
with

customers as (
    select * from intermediate.int_customer_profiles
),

assignments as (
    select * from ml.customer_segments
)

select
    customers.customer_id,  -- Customer id from the landing files
    each(profile, customers._),  -- {column} ({declared})
    assignments.segment_id,  -- The customer's segment (nearest centroid)
    assignments.segment_name,  -- The segment's readable name
    assignments.distance_to_centroid,  -- Distance to the segment centroid in scaled units
    assignments.silhouette,  -- The customer's silhouette value (-1..1)
    assignments.runner_up_segment_id,  -- The second-nearest segment
    assignments.runner_up_segment_name,  -- The runner-up segment's name
    assignments.margin,  -- Distance to the runner-up centroid minus distance to the own centroid
    customers.is_segmented,  -- Every feature is there: the customer has a segment
    customers.unsegmented_reason  -- Why the customer has no segment (returns only, a feature missing); null when segmented
from customers
left join assignments
    on customers.customer_id = assignments.customer_id
order by customers.customer_id
