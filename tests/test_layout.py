"""The layout of the repository: the top level holds the trainer and the tools a student runs, the study runner's
parts live in study/; the modules import each other without a circle (a reader can read them bottom-up: norms,
model, checkpoint, ...), and the files a reader studies stay one sitting long."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINER = ("norms", "model", "optim", "train", "data", "configurator", "checkpoint", "prepare", "sample")
TOOLS = ("analyze", "convert", "bench", "exercises", "ablate")
STUDY = sorted("study." + f[:-3] for f in os.listdir(os.path.join(ROOT, "study"))
               if f.endswith(".py") and f != "__init__.py")
MODULES = sorted(f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")) + STUDY


def module_path(module):
    return os.path.join(ROOT, *module.split(".")) + ".py"


def local_imports(module):
    """The modules of this repository (top-level names, study.<name>) that `module` imports anywhere in its file
    (also inside functions: a lazy import is still an edge of the graph)."""
    with open(module_path(module), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name if alias.name.startswith("study.") else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "study":  # from study import records, runlog
                names.update("study." + alias.name for alias in node.names)
            else:
                names.add(node.module if node.module.startswith("study.") else node.module.split(".")[0])
    return sorted(names & set(MODULES) - {module})


def test_top_level_holds_the_trainer_and_the_tools():
    """Everything else of the study runner lives in study/ (ablate.py is its entry point)."""
    top = sorted(f[:-3] for f in os.listdir(ROOT) if f.endswith(".py"))
    assert top == sorted(TRAINER + TOOLS), f"top-level modules {top}: the study runner's parts belong in study/"
    assert {"study.studies", "study.records", "study.trend"} <= set(STUDY)
    assert all(not m.startswith("study.") for t in TRAINER for m in local_imports(t)), "the trainer imports study/"


def find_cycle(graph):
    """One import circle as a list [a, b, ..., a], or None."""
    state = {}  # module -> "open" while on the current path, "done" after

    def visit(node, path):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in graph:
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_find_cycle_finds_a_circle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_modules_import_without_a_circle():
    graph = {m: local_imports(m) for m in MODULES}
    assert "checkpoint" in graph["convert"] and "model" in graph["checkpoint"]  # the parser sees imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_core_files_stay_short():
    limits = {"norms.py": 120, "model.py": 450, "data.py": 250}
    for name, limit in limits.items():
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            n = len(f.read().splitlines())
        assert n <= limit, f"{name} has {n} lines (limit {limit}): move a section where a reader looks for it"



def test_study_files_stay_one_sitting_long_and_say_what_they_are():
    """ablate.py's study is split by what a reader looks for (the runner, then in study/ the studies, run records,
    run logs, results, plots, findings, the trend): each file one sitting long, opening with a docstring that says
    what it is."""
    for module in ["ablate", "study.__init__"] + STUDY:
        with open(module_path(module), encoding="utf-8") as f:
            text = f.read()
        n = len(text.splitlines())
        assert n <= 450, f"{module_path(module)} has {n} lines (limit 450): move a section where a reader looks for it"
        assert ast.get_docstring(ast.parse(text)), f"{module_path(module)} does not open with a docstring"

def test_product_names_no_path_outside_the_repository():
    """A user's clone has no ../shared (our machines' offline corpus and BPE cache): the product must not
    look there. Tests get those optional folders from TIKTOKEN_CACHE_DIR and NANONORM_CORPUS."""
    files = [f for f in os.listdir(ROOT) if f.endswith(".py")]
    files += [os.path.join(folder, f) for folder in ("config", "tests", "study")
              for f in os.listdir(os.path.join(ROOT, folder)) if f.endswith(".py") and f != "test_layout.py"]
    for name in files:
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        for needle in ('"..", "shared"', "../shared", "'..', 'shared'"):
            assert needle not in text, f"{name} names {needle}: read an environment variable or a flag instead"


def test_run_record_hashes_all_training_code():
    """train.run_record's code hash must cover every module train.py reaches (analyze.py aside: its metrics
    describe the model, they do not change training), or a changed module would let ablate.py reuse stale runs."""
    import train
    reached, todo = set(), ["train"]
    while todo:
        module = todo.pop()
        if module not in reached and module != "analyze":
            reached.add(module)
            todo += local_imports(module)
    assert sorted(m + ".py" for m in reached) == sorted(train.TRAINING_CODE)
