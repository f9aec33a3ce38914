-- Taxonomy search (trigram, ranked, synonyms and codes) and the descriptor schema.
BEGIN;
SELECT plan(14);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT tests.act_as(:admin, 'admin');
SELECT api.upsert_taxonomy_node(:project, 'BCC', 'Basal cell carcinoma', 'NEO', '{rodent ulcer}', 'C44.91');
SELECT api.upsert_taxonomy_node(:project, 'OLD', 'Melanosis retired', 'NEO', active => false);
SELECT api.upsert_taxonomy_node(:project, 'MEL_IS', 'Melanoma in situ', 'MEL');

SELECT tests.act_as(:a1, 'annotator');
SELECT is(api.search_taxonomy(:project, 'melanom') -> 0 ->> 'code', 'MEL', 'a name prefix finds melanoma first');
SELECT is(api.search_taxonomy(:project, 'mole') -> 0 ->> 'code', 'NV', 'a synonym finds the nevus');
SELECT is(api.search_taxonomy(:project, 'rodent') -> 0 ->> 'code', 'BCC', 'a synonym word finds BCC');
SELECT is(api.search_taxonomy(:project, 'c43') -> 0 ->> 'code', 'MEL', 'an ICD-10 code finds its node');
SELECT is(api.search_taxonomy(:project, 'mel_is') -> 0 ->> 'code', 'MEL_IS', 'an exact code ranks first');
SELECT is((SELECT jsonb_agg(e ->> 'code') FROM jsonb_array_elements(
              api.search_taxonomy(:project, 'melanoma in situ') -> 0 -> 'path') e),
          '["NEO", "MEL", "MEL_IS"]'::jsonb,
          'hits carry their path from the root');
SELECT is(jsonb_array_length(api.search_taxonomy(:project, 'retired')), 0, 'inactive nodes are not offered');
SELECT is(jsonb_array_length(api.search_taxonomy(:project, '%')), 0, 'LIKE wildcards are matched literally');
SELECT tests.act_as(:outsider, 'annotator');
SELECT throws_ok(format($$SELECT api.search_taxonomy(%s, 'mel')$$, :project), 'P0002', NULL,
                 'a non-member cannot search the project');

SELECT tests.act_as(:admin, 'admin');
SELECT throws_ok(format($$SELECT api.upsert_taxonomy_node(%s, 'NEO', 'Neoplasms', 'MEL')$$, :project), '22023', NULL,
                 'a node cannot become its own ancestor');
SELECT is(api.descriptor_schema(:project) -> 0 ->> 'key', 'colours', 'the descriptor schema in form order');

-- paths follow renames and moves down the whole subtree
SELECT api.upsert_taxonomy_node(:project, 'MEL', 'Malignant melanoma', 'NEO');
SELECT is((SELECT path -> 1 ->> 'name' FROM core.taxonomy_node WHERE project_id = :project AND code = 'MEL_IS'),
          'Malignant melanoma', 'renaming a node renames it in its descendants'' paths');
SELECT api.upsert_taxonomy_node(:project, 'MAL', 'Malignant', 'NEO');
SELECT api.upsert_taxonomy_node(:project, 'MEL', 'Malignant melanoma', 'MAL');
SELECT is((SELECT jsonb_agg(e ->> 'code') FROM core.taxonomy_node n, jsonb_array_elements(n.path) e
            WHERE n.project_id = :project AND n.code = 'MEL_IS'),
          '["NEO", "MAL", "MEL", "MEL_IS"]'::jsonb, 'moving a subtree re-roots its descendants');
SELECT is(api.search_taxonomy(:project, 'MEL') -> 0 ->> 'code', 'MEL', 'an exact code still ranks first');

SELECT * FROM finish();
ROLLBACK;
