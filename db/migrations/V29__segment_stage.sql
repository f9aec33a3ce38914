-- Stage segment: each image is prepared for click-to-segment ahead of the first click (the segment service's
-- /v1/segment/prepare; docs/segmentation.md). It runs after crop, beside classify (R__pipeline.sql). Alone in its
-- migration: a value added to an enum cannot be used in the transaction that adds it.
ALTER TYPE core.ai_stage ADD VALUE 'segment' AFTER 'crop';
