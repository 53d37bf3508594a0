# The two commands: `make run` (index the demo catalog, serve search) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup run test lint opensearch opensearch-stop bench-latency bench-reindex bench-encoder evaluate evaluate-fusion evaluate-ablation clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

run: setup
	@test -f $(DATA)/demo-catalog.jsonl || $(BIN)/python -m indexer demo-catalog --out $(DATA)/demo-catalog.jsonl --data-dir $(DATA)
	$(BIN)/python -m indexer reindex --catalog $(DATA)/demo-catalog.jsonl --data-dir $(DATA)
	$(BIN)/python -m web --data-dir $(DATA) --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

# A real two-node OpenSearch cluster for the OpenSearch backend and its live tests (Java 17+, Maven).
opensearch: setup
	$(BIN)/python -m indexer opensearch-dev start

opensearch-stop: setup
	$(BIN)/python -m indexer opensearch-dev stop

bench-latency: setup
	$(BIN)/python bench/latency.py

bench-reindex: setup
	$(BIN)/python bench/reindex.py

bench-encoder: setup
	$(BIN)/python bench/encoder.py

evaluate: setup
	$(BIN)/python -m ranker evaluate --judgments ../shared/data/home-depot/judgments.csv --catalog ../shared/data/home-depot/products.csv

evaluate-fusion: setup
	$(BIN)/python -m ranker evaluate --fusion-grid --judgments ../shared/data/home-depot/judgments.csv --catalog ../shared/data/home-depot/products.csv

evaluate-ablation: setup
	$(BIN)/python bench/ranking_ablation.py --judgments ../shared/data/home-depot/judgments.csv --catalog ../shared/data/home-depot/products.csv

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
