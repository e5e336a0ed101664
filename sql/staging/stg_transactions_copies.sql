-- The later exact copies of staged order lines: equal in every column of the file to a line
-- earlier by file and line. Where config.order_settings says copies collapse (lines with order
-- ids, by default), a copy collapses into the first (not staged, and not rejected); otherwise
-- it is staged as a purchase of its own and listed here, so the run still counts it.
-- Equal hashes find the few candidates cheaply; the candidates' lines are then compared whole,
-- so a hash collision can never collapse two different lines. A model of its own because the
-- comparison reads the checked lines twice: as a table, not a query run twice over every line.
with

settings as (
    select collapses_copies from config.order_settings
),

staged_lines as (
    select source_file, line_number, line_hash
    from staging.stg_transactions_checked
    where len(reasons) = 0
),

repeated_hashes as (
    select line_hash
    from staged_lines
    group by line_hash
    having count(*) > 1
),

candidates as (
    select staged_lines.source_file, staged_lines.line_number, staged_lines.line_hash
    from staged_lines
    inner join repeated_hashes
        on staged_lines.line_hash = repeated_hashes.line_hash
),

candidate_lines as (
    select
        candidates.source_file,
        candidates.line_number,
        candidates.line_hash,
        row(*columns(raw_lines.* exclude (_source_file, _line_number, _parse_error))) as line_text
    from candidates
    inner join raw.transactions as raw_lines
        on candidates.source_file = raw_lines._source_file
        and candidates.line_number = raw_lines._line_number
),

first_copies as (
    select
        source_file,
        line_number,
        min({'f': source_file, 'l': line_number})
            over (partition by line_hash, line_text) as first_copy
    from candidate_lines
)

select
    first_copies.source_file,  -- The landing file of the later copy
    first_copies.line_number,  -- Its line
    struct_extract(first_copies.first_copy, 'f') as first_source_file,  -- The file of the first copy, which is staged
    struct_extract(first_copies.first_copy, 'l') as first_line_number,  -- Its line
    settings.collapses_copies as is_collapsed  -- Collapsed into the first copy; false: staged too (transactions.collapse_copies)
from first_copies
cross join settings
where {'f': first_copies.source_file, 'l': first_copies.line_number} <> first_copies.first_copy
order by first_copies.source_file, first_copies.line_number
