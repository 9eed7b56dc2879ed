"""The paper's tables reproduced from data: tables/table<N>.json (rows, columns, the paper's
numbers, each cell a base config + overrides), planned into cells (plan.py), each cell trained,
scored, benchmarked and costed once (run_cell.py), written as markdown (markdown.py) by
runner.reproduce_table, the engine of scripts/reproduce.py."""
