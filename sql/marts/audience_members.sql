-- One row per audience and customer in it: target (exported) or holdout (kept out, to measure
-- the campaign against), since when, and the customer's segment and RFM group now.
with

assignments as (
    select * from ml.audience_assignments
),

customers as (
    select * from marts.dim_customers
)

select
    assignments.audience,  -- The audience (audiences.<name>)
    assignments.customer_id,  -- A customer its condition selects
    assignments.audience_group,  -- target (in the exported list) or holdout (kept out, by hash)
    assignments.first_seen_run_id,  -- The refresh the customer entered the audience in
    customers.segment_name  -- Their segment now
from assignments
left join customers
    on assignments.customer_id = customers.customer_id
order by assignments.audience, assignments.customer_id
