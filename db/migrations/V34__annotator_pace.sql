-- The fast-submit hint's "usual pace" as a running figure per annotator: the active seconds of their last 50
-- revisions, kept by the hints trigger (R__quality.sql). Reading them back from core.annotation_revision at every
-- submit walked the primary key backwards under the cached generic plan: a few buffers for a busy annotator, the
-- whole table (3,158 buffers, 19 ms at 200,000 revisions) for one with no history yet.
CREATE TABLE core.annotator_pace (
    author_id bigint PRIMARY KEY REFERENCES auth."user" (id),
    recent    double precision[] NOT NULL CHECK (cardinality(recent) <= 50)
);
COMMENT ON TABLE core.annotator_pace IS
    'Active seconds (lock to submit) of each annotator''s last 50 revisions, oldest first: the fast_submit hint''s '
    'usual pace.';

INSERT INTO core.annotator_pace (author_id, recent)
SELECT x.author_id, array_agg(x.s ORDER BY x.id)
  FROM (SELECT r.author_id, r.id, extract(epoch FROM r.created_at - r.locked_at)::double precision AS s,
               row_number() OVER (PARTITION BY r.author_id ORDER BY r.id DESC) AS k
          FROM core.annotation_revision r WHERE r.locked_at IS NOT NULL) x
 WHERE x.k <= 50
 GROUP BY x.author_id;
