-- One row per configured audience: its customers, target and holdout, and who entered and left
-- since the last refresh. An empty audience is a warning (expectations/marts.audience_summary.json).
with

audiences as (
    select * from config.audiences
),

members as (
    select
        audience,
        count(*) as customers,
        count(*) filter (where audience_group = 'target') as target_customers,
        count(*) filter (where audience_group = 'holdout') as holdout_customers
    from ml.audience_assignments
    group by audience
),

movements as (
    select
        audience,
        count(*) filter (where change = 'entered') as entered,
        count(*) filter (where change = 'left') as left_audience
    from ml.audience_movements
    group by audience
)

select
    audiences.audience,  -- The audience (audiences.<name>)
    audiences.condition,  -- Its condition on marts.dim_customers
    audiences.holdout_share,  -- The share configured to be held out
    coalesce(members.customers, 0) as customers,  -- Customers it selects
    coalesce(members.target_customers, 0) as target_customers,  -- In the exported list
    coalesce(members.holdout_customers, 0) as holdout_customers,  -- Held out
    coalesce(movements.entered, 0) as entered,  -- Entered since the last refresh
    coalesce(movements.left_audience, 0) as left_audience  -- Left since the last refresh
from audiences
left join members
    on audiences.audience = members.audience
left join movements
    on audiences.audience = movements.audience
order by audiences.audience
