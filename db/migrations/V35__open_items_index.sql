-- next_item's first probe (an item sent back to me, or my own unfinished one) through a partial index of open items
-- only: a handful of rows per annotator however many they have done, whatever the statistics say.
CREATE INDEX work_item_open_idx ON core.work_item (annotator_id, project_id)
    WHERE status IN ('edits_requested', 'in_progress');
