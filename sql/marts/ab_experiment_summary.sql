-- The one-line answer per experiment, with how its segments came out.
with

results as (
    select * from ml.ab_segment_results
),

overall as (
    select * from results where scope = 'all'
),

segments as (
    select
        experiment,
        count(*) as segments_analysed,
        count(*) filter (where decision = 'ship') as segments_ship,
        count(*) filter (where decision = 'don''t ship') as segments_dont_ship,
        count(*) filter (where decision = 'inconclusive') as segments_inconclusive,
        count(*) filter (where srm_flag) as segments_with_srm,
        string_agg(segment_name, ', ' order by segment_id) filter (where decision = 'ship')
            as segments_to_ship
    from results
    where scope = 'segment'
    group by experiment
)

select
    overall.experiment,
    overall.metric,
    overall.source,
    overall.decision,
    overall.decision_reason,
    overall.users_control + overall.users_treatment as users,
    overall.mean_control,
    overall.mean_treatment,
    overall.absolute_lift,
    overall.lift_ci_low,
    overall.lift_ci_high,
    overall.relative_lift,
    overall.p_value,
    overall.cuped_lift,
    overall.variance_reduction,
    overall.achieved_power,
    overall.mde,
    overall.srm_p_value,
    overall.heterogeneity_p_value,
    overall.true_effect,
    segments.segments_analysed,
    segments.segments_ship,
    segments.segments_dont_ship,
    segments.segments_inconclusive,
    segments.segments_with_srm,
    segments.segments_to_ship
from overall
left join segments
    on overall.experiment = segments.experiment
order by overall.experiment
