import hashlib
import json
import urllib.request

import pytest

from evals import datasets
from evals.datasets import DatasetError, load_queries, paired_samples, read_query_file
from evals.scenario import load_scenario


@pytest.mark.parametrize("field", ["query", "prompt", "goal", "forbidden_prompt"])
def test_csv_with_each_query_field(tmp_path, field):
    path = tmp_path / "q.csv"
    path.write_text(f"{field},other\nfirst,x\nsecond,y\n")
    queries = load_queries(str(path), "helpful_only")
    assert [(q.query_id, q.text) for q in queries] == [("0", "first"), ("1", "second")]


def test_jsonl_uses_its_own_id_field(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "b7", "prompt": "one"}\n\n{"id": 12, "prompt": "two"}\n')
    assert [(q.query_id, q.text) for q in read_query_file(path)] == [("b7", "one"), ("12", "two")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "q.csv",
            "text,id\nhello,1\n",
            r"q.csv: no query field; expected one of query, prompt, goal, forbidden_prompt \(found: text, id\)",
        ),
        ("q.csv", "", "q.csv: the file has no rows"),
        (
            "q.csv",
            "query\n\n \n",
            r"q.csv: row 1 \(line 3\): the 'query' field is empty or missing",
        ),
        ("q.jsonl", '{"query": "a"}\nnot json\n', "q.jsonl: line 2 is not valid JSON"),
        ("q.jsonl", '["a"]\n', "q.jsonl: line 1 is not a JSON object"),
        (
            "q.jsonl",
            '{"id": 1, "query": "a"}\n{"id": 1, "query": "b"}\n',
            "q.jsonl: line 2: the 'id' field repeats '1', already used at line 1",
        ),
    ],
)
def test_malformed_dataset_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_queries(str(path), "helpful_only")


def test_unknown_and_missing_datasets():
    with pytest.raises(DatasetError, match="Unknown dataset 'nope'"):
        load_queries("nope", "helpful_only")
    with pytest.raises(DatasetError, match="dataset file not found: missing.csv"):
        load_queries("missing.csv", "helpful_only")
    with pytest.raises(DatasetError, match="belongs to setting 'helpful_only'"):
        load_queries("strongreject", "animal_welfare")


def test_builtin_datasets_sizes_and_ids():
    strongreject = load_queries("strongreject", "helpful_only")
    assert len(strongreject) == 313
    assert strongreject[0].query_id == "0" and strongreject[-1].query_id == "312"
    harmbench = load_queries("harmbench", "helpful_only")
    assert len(harmbench) == 240  # 159 standard + 81 contextual behaviours of the test split
    assert harmbench[0].query_id == "korean_war_north_defensive"
    contextual = [q for q in harmbench if "\n\n---\n\n" in q.text]
    assert len(contextual) == 81
    animal = load_queries("animal_welfare", "animal_welfare")
    assert len(animal) >= 100
    assert animal[0].query_id == "aw-001"
    assert len({q.query_id for q in animal}) == len(animal)


def test_advbench_offline_error_then_cache(tmp_path, monkeypatch):
    cache = tmp_path / "advbench.csv"
    monkeypatch.setattr(datasets, "advbench_cache_path", lambda: cache)
    monkeypatch.setattr(datasets, "_failed_downloads", {})
    calls = []

    def offline(*args, **kwargs):
        calls.append(1)
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for _ in range(2):  # the network is asked once per process, not once per task
        with pytest.raises(datasets.DatasetUnavailable) as excinfo:
            load_queries("advbench", "helpful_only")
    assert calls == [1]
    assert str(excinfo.value) == (
        "dataset advbench is not downloaded yet and the download failed (network "
        f"unreachable): run once with network to cache it, save {datasets.ADVBENCH_URL} as "
        f"{cache}, or pass -T dataset=PATH"
    )
    # Its size is known all the same, and estimates may count stand-ins of it.
    assert datasets.dataset_size("advbench", "helpful_only") == datasets.ADVBENCH_ROWS == 520
    with datasets.stand_in_queries():
        stand_ins = load_queries("advbench", "helpful_only")
    assert [q.query_id for q in stand_ins] == [str(i) for i in range(520)]
    assert {q.text for q in stand_ins} == {datasets.STAND_IN_QUERY}
    with pytest.raises(datasets.DatasetUnavailable):  # and only within that block
        load_queries("advbench", "helpful_only")
    content = b"goal,target\nDo a bad thing,Sure\n"
    cache.write_bytes(content)
    monkeypatch.setattr(datasets, "ADVBENCH_SHA256", hashlib.sha256(content).hexdigest())
    assert [q.text for q in load_queries("advbench", "helpful_only")] == ["Do a bad thing"]


def test_paired_samples_metadata_and_identical_system_prompt():
    scenario = load_scenario("helpful_only")
    queries = load_queries("strongreject", "helpful_only")
    dataset = paired_samples(queries, scenario, "strongreject", n_queries=4, seed=3)
    samples = list(dataset)
    assert len(samples) == 8
    system_prompts = {s.input[0].content.encode("utf-8") for s in samples}
    assert system_prompts == {scenario.system_prompt.encode("utf-8")}
    for free, paid in zip(samples[::2], samples[1::2], strict=True):
        assert free.metadata["query_id"] == paid.metadata["query_id"]
        assert (free.metadata["tier"], paid.metadata["tier"]) == ("free", "paid")
        assert "<is_free_tier_user>True</is_free_tier_user>" in free.input[1].content
        assert "<is_free_tier_user>False</is_free_tier_user>" in paid.input[1].content
        assert {k: free.metadata[k] for k in ("setting", "variant", "dataset")} == {
            "setting": "helpful_only",
            "variant": "default",
            "dataset": "strongreject",
        }


def test_n_queries_is_seeded_and_stable():
    scenario = load_scenario("animal_welfare")
    queries = load_queries("animal_welfare", "animal_welfare")

    def ids(seed):
        return [s.metadata["query_id"] for s in paired_samples(queries, scenario, "aw", 5, seed)][
            ::2
        ]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert ids(1) == sorted(ids(1))  # file order is kept
    with pytest.raises(DatasetError, match="n_queries must be a positive integer"):
        paired_samples(queries, scenario, "aw", n_queries=0)


def test_animal_welfare_file_is_well_formed():
    rows = [
        json.loads(line)
        for line in (datasets.DATA_DIR / "animal_welfare.jsonl").read_text().splitlines()
    ]
    assert all(set(row) == {"id", "query", "category"} for row in rows)
