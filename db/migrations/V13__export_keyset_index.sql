-- The export reads approved items page by page in (image, item) order: this index makes each page a short range
-- scan instead of a sort of every approved item of the project.
CREATE INDEX work_item_done_image_idx ON core.work_item (project_id, image_id, id) WHERE status = 'done';
