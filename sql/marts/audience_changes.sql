-- Who entered and who left each audience since the last published refresh.
select
    audience,  -- The audience
    customer_id,  -- The customer
    change,  -- entered or left
    audience_group  -- Their group: now for who entered, then for who left
from ml.audience_movements
order by audience, change, customer_id
