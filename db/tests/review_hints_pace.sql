-- The fast-submit hint's running pace (core.annotator_pace, V34): the last 50 active times per author, equal to
-- what reading them back from core.annotation_revision gives, and nothing read from other authors' revisions.
BEGIN;
SELECT plan(4);

SELECT * FROM tests.fixture(n_images => 1) \gset
SELECT tests.as_superuser();
SELECT w.id AS item FROM core.work_item w WHERE w.project_id = :project LIMIT 1 \gset
INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at)
VALUES (:item, 1, :a3, tests.content(:nev), :nev, now() - interval '30 s');
SELECT is((SELECT recent FROM core.annotator_pace WHERE author_id = :a3), ARRAY[30]::float8[],
          'core.annotator_pace: an author''s first revision starts their figure');
-- 60 revisions of 10, 11, ... 69 s: the figure keeps the last 50 (20 .. 69 s), oldest first
INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at)
SELECT :item, 1 + s, :a2, tests.content(:nev), :nev, now() - make_interval(secs => 9 + s) FROM generate_series(1, 60) s;
SELECT is((SELECT recent FROM core.annotator_pace WHERE author_id = :a2),
          ARRAY(SELECT x::float8 FROM generate_series(20, 69) x), 'core.annotator_pace: the last 50, oldest first');
SELECT is((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest((SELECT recent FROM core.annotator_pace
                                                                               WHERE author_id = :a2)) x),
          (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s)
             FROM (SELECT extract(epoch FROM r.created_at - r.locked_at)::float8 AS s FROM core.annotation_revision r
                    WHERE r.author_id = :a2 ORDER BY r.id DESC LIMIT 50) q),
          'core.annotator_pace: the median is the one the revisions give');
-- a 5 s submit against a 44.5 s median (ratio 0.5 by default) raises the hint
INSERT INTO core.annotation_revision (item_id, revision_seq, author_id, content, class_id, locked_at)
VALUES (:item, 100, :a2, tests.content(:nev), :nev, now() - interval '5 s');
SELECT is((SELECT message FROM core.review_hint WHERE kind = 'fast_submit' AND item_id = :item),
          'Submitted after 5 s; this annotator usually takes 45 s.', 'raise_review_hints: the fast submit flagged');

SELECT * FROM finish();
ROLLBACK;
