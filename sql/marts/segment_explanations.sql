-- One row per segment, ready for a BI tile: its name, the rules that describe it, how faithful
-- those rules are, and the features that set it apart from the other segments.
with

segments as (
    select segment_id, segment_name, customers, share from marts.dim_segments
),

rules as (
    select
        segment_id,
        string_agg(rule, ' OR ' order by support desc) as rules,
        count(*) as rule_count,
        sum(support) as rule_support
    from ml.surrogate_rules
    group by segment_id
),

fidelity as (
    select segment_id, cv_fidelity, train_fidelity
    from ml.surrogate_fidelity
    where is_chosen and scope = 'segment'
),

overall as (
    select cv_fidelity as overall_cv_fidelity, depth as tree_depth
    from ml.surrogate_fidelity
    where is_chosen and scope = 'all'
),

distinguishing as (
    select
        segment_id,
        string_agg(
            feature || ' (' || round(importance_share, 2) || ')', ', ' order by "rank", feature
        ) filter (where "rank" <= 2) as top_features,
        any_value(top_feature_note) as top_feature_note
    from ml.feature_importance
    where scope = 'segment' and method = 'permutation'
    group by segment_id
)

select
    segments.segment_id,  -- The segment (marts.dim_segments)
    segments.segment_name,  -- The segment's readable name
    segments.customers,  -- Customers in the segment
    segments.share,  -- Share of all segmented customers
    coalesce(rules.rules, 'no leaf of the surrogate tree predicts this segment') as rules,  -- The surrogate tree's rules that predict this segment, joined by OR
    coalesce(rules.rule_count, 0) as rule_count,  -- How many rules (leaves) predict the segment
    fidelity.cv_fidelity as segment_cv_fidelity,  -- Share of the segment the rules assign correctly on held-out folds
    fidelity.train_fidelity as segment_train_fidelity,  -- Share of the segment the rules assign correctly on the data they were fitted on
    overall.overall_cv_fidelity,  -- Share of all customers the rules assign correctly on held-out folds
    overall.tree_depth,  -- Depth of the surrogate tree
    distinguishing.top_features,  -- The two features that set the segment apart (permutation importance share)
    distinguishing.top_feature_note  -- The feature that sets the segment apart most, in words (permutation importance)
from segments
left join rules
    on segments.segment_id = rules.segment_id
left join fidelity
    on segments.segment_id = fidelity.segment_id
left join distinguishing
    on segments.segment_id = distinguishing.segment_id
cross join overall
order by segments.segment_id
