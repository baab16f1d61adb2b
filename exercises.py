"""
Class exercises cut from nanonorm's own code and graded by tests (EXERCISES.md has one section each).

    python exercises.py make DIR [--only=rmsnorm,crms]   student copy of the repository in DIR
    python exercises.py grade [DIR]                      one row per exercise: points, pass/fail, first failure
    python exercises.py record                           rewrite tests/exercise_data/ from the reference code

In the reference code the body of each technique sits between two comment lines, a start line
`# exercise: NAME` and an end line `# end exercise` (each alone on its line); the code runs as if they
were not there. `make` copies the project files (git's tracked and unignored files, or a walk that skips
data/, out*/, results/, caches) and replaces each chosen body by one line at the body's indentation,
    raise SystemExit("--norm=rms (also ...) needs exercise NAME (not done yet): read EXERCISES.md#NAME")
so a command that needs an undone exercise stops with that line and no traceback; the other exercises
keep their solution; every marker line is dropped. The test files that check a chosen exercise against its
formula are left out (SOLUTION_TESTS), so is the grader's answer key (GRADER_ONLY), and the copy is
searched for every distinctive line of every removed body before `make` reports success.

Grading never holds the answer: tests/test_exercises.py compares with outputs and float64 gradients
recorded from the reference on fixed random inputs (tests/exercise_data/NAME.pt, written by `record`
from the CASES below), checks the spec's answers on degenerate inputs (EXERCISES.md gives them), checks
that bfloat16 and float16 inputs get float32 statistics, and checks mathematical properties. Tolerances come
from each formula's conditioning (DEFAULT_TOLERANCE, COMPARE_AS, TOLERANCE_OF_OUTPUT), so a correct
implementation written differently passes, and a wrong one fails with the output that differs and by how
much. tests/exercise_data/candidates.py (never copied) holds such implementations and common mistakes,
which the tool tests feed to the grader.
"""

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join("tests", "exercise_data")
TEST_FILE = os.path.join("tests", "test_exercises.py")


@dataclass(frozen=True)
class Exercise:
    file: str  # where the marked body lives
    where: str  # the function whose body it is
    points: int
    switch: tuple  # train.py flags that run this body (the default run does not)
    needs: tuple = ()  # exercises the switch also runs first
    users: str = ""  # every command that runs this body, for the one-line stop of an undone exercise


# in EXERCISES.md's order: an exercise comes after those its switch or its experiment needs
EXERCISES = {
    "rmsnorm": Exercise("norms.py", "rms_norm", 10, ("--norm=rms",),
                        users="--norm=rms (also --norm=ss, --qk_norm=True)"),
    "centre_writer": Exercise("model.py", "make_stream_zero_mean.centre", 15, ("--zero_mean=True",),
                              users="--zero_mean=True (also --norm=crms)"),
    "crms": Exercise("norms.py", "CRMSNorm.forward", 15, ("--norm=crms",), needs=("centre_writer",),
                     users="--norm=crms"),
    "layernorm_scaling": Exercise("model.py", "layernorm_scaling", 5, ("--depth_scale=True",),
                                  users="--depth_scale=True"),
    "mix_ln": Exercise("model.py", "mix_ln_placement", 10, ("--norm_pos=mix",), users="--norm_pos=mix"),
    "newton_schulz": Exercise("optim.py", "zeropower_via_newtonschulz5", 20, ("--optimizer=muon",),
                              users="--optimizer=muon"),
    "excess_kurtosis": Exercise("analyze.py", "excess_kurtosis", 15, ("--analyze_interval=1", "--eval_interval=1"),
                                users="--analyze_interval=N (also python analyze.py)"),
    "angular_distance": Exercise("analyze.py", "angular_distance", 10,
                                 ("--analyze_interval=1", "--eval_interval=1"), needs=("excess_kurtosis",),
                                 users="--analyze_interval=N (also python analyze.py)"),
}

# test files that check an exercise against its formula or a hand-written copy of its solution
SOLUTION_TESTS = {
    "rmsnorm": ("tests/test_model.py",), "crms": ("tests/test_model.py",),
    "layernorm_scaling": ("tests/test_model.py",), "mix_ln": ("tests/test_model.py",),
    "centre_writer": ("tests/test_model.py",), "newton_schulz": ("tests/test_optim.py",),
    "angular_distance": ("tests/test_analyze.py",), "excess_kurtosis": ("tests/test_analyze.py",),
}
# never in a student copy: correct implementations written differently from the reference, and common
# mistakes, that tests/test_exercises.py feeds to the grader to check that it is fair
GRADER_ONLY = ("tests/exercise_data/candidates.py",)

START = re.compile(r"^(\s*)#\s*exercise:\s*(\S+)\s*$")
END = re.compile(r"^(\s*)#\s*end exercise\s*$")
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".benchmarks", ".venv", "venv", "data", "ablations",
             "results"}  # results: the experiments' answers


class ExerciseError(Exception):
    """A problem the user can fix; main() prints it as one line."""


def not_done(name):
    """The one line a student copy stops with when a command runs an exercise that is not done yet."""
    return f"{EXERCISES[name].users} needs exercise {name} (not done yet): read EXERCISES.md#{name}"


def stub(name, indent):
    # SystemExit: Python prints its message alone, no traceback, and no `except Exception` swallows it;
    # pytest still reports it as a failure of the test that ran it
    return f'{indent}raise SystemExit("{not_done(name)}")\n'


# ---------------------------------------------------------------------------------------------
# markers


def find_markers(text, path="<text>"):
    """[(name, start line index, end line index, indent)] of the marked bodies in a source text."""
    found, open_ = [], None
    for i, line in enumerate(text.splitlines()):
        start, end = START.match(line), END.match(line)
        if start:
            if open_:
                raise ExerciseError(f"{path}:{i + 1}: exercise {start.group(2)} starts inside exercise {open_[0]}")
            if start.group(2) not in EXERCISES:
                raise ExerciseError(f"{path}:{i + 1}: unknown exercise {start.group(2)!r}: "
                                    f"choose from {', '.join(EXERCISES)}")
            open_ = (start.group(2), i, start.group(1))
        elif end:
            if not open_:
                raise ExerciseError(f"{path}:{i + 1}: '# end exercise' without a start")
            if end.group(1) != open_[2]:
                raise ExerciseError(f"{path}:{i + 1}: '# end exercise' indented differently from its start")
            found.append((open_[0], open_[1], i, open_[2]))
            open_ = None
    if open_:
        raise ExerciseError(f"{path}: exercise {open_[0]} has no '# end exercise'")
    return found


def marked_bodies(root=ROOT):
    """{name: (file, [body lines])} for every marked exercise in root's Python files."""
    bodies = {}
    for rel in project_files(root):
        if not rel.endswith(".py"):
            continue
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            lines = f.read().splitlines()
        for name, a, b, _ in find_markers("\n".join(lines), rel):
            if name in bodies:
                raise ExerciseError(f"exercise {name} is marked twice ({bodies[name][0]} and {rel})")
            bodies[name] = (rel, lines[a + 1:b])
    return bodies


def cut(text, chosen, path="<text>"):
    """The student version of a source text: chosen bodies -> the one-line stub, markers dropped."""
    lines = text.splitlines(keepends=True)
    out, i = [], 0
    for name, a, b, indent in find_markers(text, path):
        out += lines[i:a]
        out += [stub(name, indent)] if name in chosen else lines[a + 1:b]
        i = b + 1
    return "".join(out + lines[i:])


def code_line(line):
    return re.sub(r"\s+#.*$", "", line).strip()


def solution_lines(bodies, name, root=ROOT):
    """The lines of one body that compute something of its own: not a control-flow header (`for ...:`), at
    least 16 characters, in no other body and nowhere else in the code outside tests."""
    common = set()
    for other, (_, lines) in bodies.items():
        if other != name:
            common.update(code_line(l) for l in lines)
    for rel in project_files(root):
        if rel.endswith(".py") and not rel.startswith("tests/"):
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                text = f.read()
            marked = {j for _, a, b, _ in find_markers(text, rel) for j in range(a, b + 1)}
            common.update(code_line(l) for j, l in enumerate(text.splitlines()) if j not in marked)
    return [c for c in map(code_line, bodies[name][1]) if len(c) >= 16 and not c.endswith(":") and c not in common]


def find_leaks(folder, lines_by_name):
    """[(exercise, file, line)] where a solution line appears in a text file under folder."""
    leaks = []
    for rel in project_files(folder):
        try:
            with open(os.path.join(folder, rel), encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue  # binary: recorded tensors, plots
        leaks += [(name, rel, line) for name, lines in lines_by_name.items() for line in lines if line in text]
    return leaks


# ---------------------------------------------------------------------------------------------
# make


def project_files(root):
    """Relative paths of the project's files: git's tracked and unignored files, else a walk."""
    if os.path.exists(os.path.join(root, ".git")):
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            files = sorted(set(p for p in out.stdout.split("\0") if p))
            return [p for p in files if os.path.isfile(os.path.join(root, p)) and not skipped(p)]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not skipped(d))
        rel_dir = os.path.relpath(dirpath, root)
        for f in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, f)).replace(os.sep, "/")
            if not skipped(rel) and not f.endswith(".pyc"):
                files.append(rel)
    return files


def skipped(rel):
    parts = rel.split("/")
    return any(p in SKIP_DIRS or p.startswith("out") and p != parts[-1] for p in parts) or parts[-1] == ".git"


def make(dest, only=None, root=ROOT, log=print):
    """Write the student copy of root into dest (missing or empty). Returns the exercises cut out."""
    chosen = parse_only(only)
    dest_abs, root_abs = os.path.realpath(dest), os.path.realpath(root)
    if dest_abs == root_abs or dest_abs.startswith(root_abs + os.sep):
        raise ExerciseError(f"refusing to write into {dest}: it is inside the repository {root}")
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise ExerciseError(f"refusing to write into {dest}: it exists and is not an empty folder")
    bodies = marked_bodies(root)
    missing = [n for n in EXERCISES if n not in bodies]
    for n in missing:
        log(f"warning: exercise {n} has no markers in {EXERCISES[n].file} ({EXERCISES[n].where}); "
            f"its solution stays in the copy", file=sys.stderr)
    if only and set(chosen) & set(missing):
        raise ExerciseError(f"cannot cut {', '.join(sorted(set(chosen) & set(missing)))}: no markers in the code")
    chosen = [n for n in chosen if n in bodies]
    leave_out = {t for n in chosen for t in SOLUTION_TESTS[n]} | set(GRADER_ONLY)
    os.makedirs(dest, exist_ok=True)
    try:
        for rel in project_files(root):
            if rel in leave_out:
                continue
            target = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if rel.endswith(".py"):
                with open(os.path.join(root, rel), encoding="utf-8") as f:
                    text = cut(f.read(), chosen, rel)
                compile(text, rel, "exec")  # a cut that breaks the syntax is a bug here, not the student's
                with open(target, "w", encoding="utf-8") as f:
                    f.write(text)
            else:
                shutil.copy2(os.path.join(root, rel), target)
        leaks = find_leaks(dest, {n: solution_lines(bodies, n, root) for n in chosen})
        if leaks:
            name, rel, line = leaks[0]
            raise ExerciseError(f"the copy still holds the solution of {name} in {rel} ({line!r}); "
                                f"it was removed: mark that code or add the file to SOLUTION_TESTS")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # dest was missing or empty: nothing of the user's is lost
        raise
    for rel in sorted(leave_out):
        log(f"left out {rel}: " + ("it holds correct answers (the grader's own tests)" if rel in GRADER_ONLY
                                   else "it checks the solutions against their formulas"))
    log(f"student copy in {dest}: cut {', '.join(chosen) or 'nothing'}"
        + (f"; kept the solutions of {', '.join(n for n in EXERCISES if n not in chosen)}"
           if len(chosen) < len(EXERCISES) else ""))
    log(f"grade it with: python exercises.py grade {dest}")
    return chosen


def parse_only(only):
    if not only:
        return list(EXERCISES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    bad = [n for n in names if n not in EXERCISES]
    if bad or not names:
        raise ExerciseError(f"bad value {only!r} for --only: choose from {', '.join(EXERCISES)}")
    return [n for n in EXERCISES if n in names]


# ---------------------------------------------------------------------------------------------
# grade


def grade(folder=ROOT, log=print):
    """Run tests/test_exercises.py in folder; print one row per exercise. Returns True when all pass."""
    if not os.path.isfile(os.path.join(folder, TEST_FILE)):
        raise ExerciseError(f"no {TEST_FILE} in {folder}: grade a nanonorm copy made by `exercises.py make`")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.xml")
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not tool_",
                            f"--junitxml={report}", TEST_FILE], cwd=folder, capture_output=True, text=True)
        cases = junit_cases(report) if os.path.exists(report) else []
    if not cases:
        tail = (p.stdout + p.stderr).strip().splitlines()
        cases = [("collection", "error", tail[-1] if tail else f"pytest exited {p.returncode}")]
    rows, total, earned = [], 0, 0
    for name, ex in EXERCISES.items():
        mine = [c for c in cases if c[0].startswith(f"test_{name}_")]
        failures = [c for c in mine if c[1] in ("failure", "error")]
        if not mine:  # nothing of this exercise ran: a collection error names why
            failures = [c for c in cases if c[1] in ("failure", "error")] or [(None, "", "no tests found")]
        ok = not failures and any(c[1] == "pass" for c in mine)
        total += ex.points
        earned += ex.points if ok else 0
        rows.append((name, f"{ex.points if ok else 0}/{ex.points}", "pass" if ok else "FAIL",
                     "" if ok else one_line(failures[0][2]) if failures else "all tests skipped"))
    width = max(len(r[0]) for r in rows)
    log(f"{'exercise':<{width}}  points  result  first failure")
    for name, pts, res, why in rows:
        log(f"{name:<{width}}  {pts:>6}  {res:<6}  {why}".rstrip())
    log(f"{'total':<{width}}  {f'{earned}/{total}':>6}")
    return earned == total


def junit_cases(path):
    """[(test name, 'pass' | 'failure' | 'error' | 'skipped', message)] from pytest's JUnit XML."""
    cases = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        status, message = "pass", ""
        for child in tc:
            if child.tag in ("failure", "error", "skipped"):
                status = child.tag
                message = child.get("message") or (child.text or "").strip()
                break
        cases.append((tc.get("name", ""), status, message))
    return cases


def one_line(message, width=160):
    lines = [l.strip() for l in message.strip().splitlines() if l.strip()]
    line = lines[0].removeprefix("Failed: ") if lines else "failed"
    return line if len(line) <= width else line[:width - 3] + "..."


# ---------------------------------------------------------------------------------------------
# the recorded cases: fixed random inputs, and what each exercise's code gives for them

TINY_GPT = dict(n_layer=3, n_head=2, n_embd=8, block_size=6, vocab_size=11, init_std=0.3)


def randn(gen, *shape):
    import torch
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def tiny_gpt_inputs(seed, **overrides):
    """A tiny float64 GPT's config, its parameters (norm gains and biases randomized too) and a batch."""
    import torch
    from model import GPT, GPTConfig
    gen = torch.Generator().manual_seed(seed)
    config = {**TINY_GPT, **overrides}
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**config, "zero_mean": False})).double()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for k, v in state.items():
        if ".ln_" in k or "ln_f" in k:
            state[k] = (1.0 if k.endswith("weight") else 0.0) + 0.3 * randn(gen, *v.shape)
    idx = torch.randint(0, config["vocab_size"], (2, config["block_size"]), generator=gen)
    targets = torch.randint(0, config["vocab_size"], (2, config["block_size"]), generator=gen)
    return {"config": config, "state": state, "idx": idx, "targets": targets}


def tiny_gpt_outputs(inputs):
    """Logits, loss and the float64 gradient of every parameter of the tiny GPT on its batch."""
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(**inputs["config"])).double()
    model.load_state_dict(inputs["state"])
    logits, loss = model(inputs["idx"], inputs["targets"])
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach()}
    out.update({f"gradient of {n}": p.grad for n, p in model.named_parameters()})
    return out


def norm_outputs(norm, x, probe):
    """Output of a norm module and the float64 gradients of sum(output * probe) for its input and parameters."""
    x = x.clone().requires_grad_(True)
    y = norm(x)
    (y * probe).sum().backward()
    out = {"output": y.detach(), "gradient of the input": x.grad}
    out.update({f"gradient of {n}": p.grad for n, p in norm.named_parameters()})
    return out


def set_params(module, **values):
    import torch
    with torch.no_grad():
        for name, value in values.items():
            getattr(module, name).copy_(value)
    return module


def rmsnorm_inputs(gen):
    return {"x": randn(gen, 2, 3, 8), "x_small": 1e-3 * randn(gen, 4, 8),  # small: eps matters
            "gain": 1 + 0.3 * randn(gen, 8), "bias": 0.3 * randn(gen, 8), "probe": randn(gen, 2, 3, 8)}


def rmsnorm_outputs(i):
    from norms import RMSNorm
    out = {}
    for bias in (True, False):
        for xname in ("x", "x_small"):
            norm = RMSNorm(8, eps=1e-5, bias=bias).double()
            set_params(norm, weight=i["gain"], **({"bias": i["bias"]} if bias else {}))
            probe = i["probe"].reshape(-1, 8)[:i[xname].shape[0]] if xname == "x_small" else i["probe"]
            res = norm_outputs(norm, i[xname], probe)
            out.update({f"RMSNorm(bias={bias})({xname}): {k}": v for k, v in res.items()})
    return out


def crms_inputs(gen):
    x = randn(gen, 2, 3, 8)
    small = 1e-3 * randn(gen, 4, 8)
    return {"z": (x - x.mean(-1, keepdim=True))[..., :7], "z_small": (small - small.mean(-1, keepdim=True))[..., :7],
            "gain": 1 + 0.3 * randn(gen, 8), "bias": 0.3 * randn(gen, 8),
            "probe": randn(gen, 2, 3, 8), "probe_compact": randn(gen, 2, 3, 7)}


def crms_outputs(i):
    from norms import CRMSNorm
    out = {}
    for kind in ("affine", "affine, no bias", "compact"):
        for zname in ("z", "z_small"):
            norm = CRMSNorm(8, eps=1e-5, bias=kind == "affine", affine=kind != "compact").double()
            if kind != "compact":
                set_params(norm, weight=i["gain"], **({"bias": i["bias"]} if kind == "affine" else {}))
            probe = i["probe_compact"] if kind == "compact" else i["probe"]
            if zname == "z_small":
                probe = probe.reshape(-1, probe.shape[-1])[:4]
            res = norm_outputs(norm, i[zname], probe)
            out.update({f"CRMSNorm({kind})({zname}): {k}": v for k, v in res.items()})
    return out


def layernorm_scaling_inputs(gen):
    return {"gpt": tiny_gpt_inputs(1, depth_scale=True)}


def layernorm_scaling_outputs(i):
    import torch
    from model import layernorm_scaling
    out = {"layernorm_scaling(l), l = 1..16": torch.tensor([float(layernorm_scaling(l)) for l in range(1, 17)],
                                                          dtype=torch.float64)}
    out.update({f"GPT(depth_scale=True): {k}": v for k, v in tiny_gpt_outputs(i["gpt"]).items()})
    return out


MIX_RATIOS = (0.0, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.7, 0.75, 1.0)


def mix_ln_inputs(gen):
    return {"gpt": tiny_gpt_inputs(2, n_layer=4, norm_pos="mix", mix_ratio=0.5)}


def mix_ln_outputs(i):
    import torch
    from model import mix_ln_placement
    out = {}
    for L in range(1, 25):  # rows: MIX_RATIOS, columns: the blocks; 1 = post, 0 = pre
        post = [[mix_ln_placement(l, L, r) == "post" for l in range(L)] for r in MIX_RATIOS]
        out[f"placements for n_layer={L}"] = torch.tensor(post, dtype=torch.float64)
    out.update({f"GPT(norm_pos=mix, mix_ratio=0.5): {k}": v for k, v in tiny_gpt_outputs(i["gpt"]).items()})
    return out


def centre_writer_inputs(gen):
    return {"gpt": tiny_gpt_inputs(3, zero_mean=True), "h": randn(gen, 2, 6, 8)}


def writer_outputs(gpt_inputs, h, compress):
    """The writers of the stream (embedding, a block's attention and MLP) after make_stream_zero_mean."""
    from model import GPT, GPTConfig, make_stream_zero_mean
    model = GPT(GPTConfig(**{**gpt_inputs["config"], "zero_mean": False})).double()
    model.load_state_dict(gpt_inputs["state"])
    make_stream_zero_mean(model, compress=compress)
    block = model.transformer.h[0]
    return {"embedding": model.embed(gpt_inputs["idx"]), "attention": block.attn(h), "MLP": block.mlp(h)}


def centre_writer_outputs(i):
    import torch
    out = {f"GPT(zero_mean=True): {k}": v for k, v in tiny_gpt_outputs(i["gpt"]).items()}
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(**i["gpt"]["config"])).double()
    model.load_state_dict(i["gpt"]["state"])
    out["GPT(zero_mean=True): hidden states"] = torch.stack(model.hidden_states(i["gpt"]["idx"]))
    with torch.no_grad():
        for compress in (False, True):
            for k, v in writer_outputs(i["gpt"], i["h"], compress).items():
                out[f"{k} output with compress={compress}"] = v
    return out


def newton_schulz_inputs(gen):
    # large: a norm of ~6e3 makes any eps of the normalization negligible (tolerance ~1e-12), so a
    # computation in float32 instead of G's float64 shows (~1e-7)
    return {"square": randn(gen, 8, 8), "wide": randn(gen, 4, 10), "tall": randn(gen, 10, 4),
            "batch": randn(gen, 3, 5, 6), "large": 1e3 * randn(gen, 6, 6)}


def newton_schulz_outputs(i):
    from optim import zeropower_via_newtonschulz5
    out = {f"zeropower_via_newtonschulz5({k})": zeropower_via_newtonschulz5(v) for k, v in i.items()}
    for steps in (1, 2):
        out[f"zeropower_via_newtonschulz5(square, steps={steps})"] = zeropower_via_newtonschulz5(i["square"], steps)
    return out


def angular_distance_inputs(gen):
    a32 = randn(gen, 3, 64).float()
    return {"a": randn(gen, 4, 6, 16), "b": randn(gen, 4, 6, 16),
            "a32": a32, "b32": a32 + 1e-4 * randn(gen, 3, 64).float()}  # nearly parallel, float32


def angular_distance_outputs(i):
    from analyze import angular_distance
    return {"angular_distance(a, b)": angular_distance(i["a"], i["b"]),
            "angular_distance(a32, b32), nearly parallel float32": angular_distance(i["a32"], i["b32"])}


def excess_kurtosis_inputs(gen):
    import torch
    return {"gaussian": randn(gen, 4, 5, 64), "heavy": randn(gen, 3, 128) * torch.exp(randn(gen, 3, 128)),
            "float32": randn(gen, 2, 32).float()}


def excess_kurtosis_outputs(i):
    from analyze import excess_kurtosis
    return {f"excess_kurtosis({k})": excess_kurtosis(v) for k, v in i.items()}


CASES = {name: (globals()[f"{name}_inputs"], globals()[f"{name}_outputs"]) for name in EXERCISES}

# Tolerances come from the conditioning of each formula, not from the reference's rounding. These are
# float64 computations of formulas whose outputs move by about their inputs' relative error: any order of
# operations rounds to ~1e-15 relative, so (rtol, atol) = (1e-9, 1e-12) accepts every correct way of writing
# them and still sees the smallest plausible mistake (eps outside the sqrt moves RMSNorm by ~5e-6).
DEFAULT_TOLERANCE = (1e-9, 1e-12)
# Where the output itself is ill-conditioned, both sides are mapped to a well-conditioned quantity first.
# angular_distance: d = arccos(c)/pi magnifies an error e of the cosine c to sqrt(2 e)/pi near c = 1
# (1e-12 -> 4.5e-7), so eps added to the norm product instead of clamping it, or an atan2 form that is
# more accurate than arccos near 0, would differ from the reference by far more than its rounding. Compare
# cos(pi d) instead: the cosine is computed from the inputs to ~1e-14, and the eps form changes it by
# eps/(|a||b|) < 1e-12 on the recorded inputs; a float32 computation is off by ~1e-7 there.
# (name, map, the outputs' range, where the map is one-to-one)
COMPARE_AS = {"angular_distance": ("cos(pi d)", lambda d: (d * math.pi).cos(), (0.0, 1.0))}
TOLERANCE = {"angular_distance": (0.0, 1e-12)}


def newton_schulz_sensitivity(steps):
    """max over s in [0, 1] of |s f'(s)|, f = the quintic map applied `steps` times.

    Newton-Schulz maps each singular value s of G / ||G||_F to f(s). Scaling the input by (1 - delta),
    as any eps in the normalization does (delta = eps / ||G||_F, whether eps is added or clamped or
    dropped), moves each output singular value by delta s f'(s), so by at most delta times this."""
    import torch
    a, b, c = 3.4445, -4.7750, 2.0315  # the spec's coefficients (EXERCISES.md#newton_schulz)
    s = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    f, slope = s.clone(), torch.ones_like(s)
    for _ in range(steps):
        slope = slope * (a + 3 * b * f ** 2 + 5 * c * f ** 4)
        f = a * f + b * f ** 3 + c * f ** 5
    return (s * slope).abs().max().item()


def newton_schulz_tolerance(inputs, key):
    """(rtol, atol) for one recorded output: float64 rounding (1e-12) plus what an eps in [0, 1e-7] moves."""
    match = re.fullmatch(r"zeropower_via_newtonschulz5\((\w+)(?:, steps=(\d+))?\)", key)
    G = inputs[match.group(1)]
    smallest_norm = G.flatten(0, -3).norm(dim=(-2, -1)).min().item() if G.ndim > 2 else G.norm().item()
    return 0.0, 1e-12 + newton_schulz_sensitivity(int(match.group(2) or 5)) * 1e-7 / smallest_norm


TOLERANCE_OF_OUTPUT = {"newton_schulz": newton_schulz_tolerance}  # (inputs, key) -> (rtol, atol)


def recorded_path(name, root=ROOT):
    return os.path.join(root, DATA_DIR, f"{name}.pt")


def record(root=ROOT, names=None, log=print):
    """Write tests/exercise_data/NAME.pt: the inputs and the reference outputs. Run on the reference."""
    import torch
    bodies = marked_bodies(root)
    if not bodies:
        raise ExerciseError("record needs the reference code (with exercise markers); this looks like a student copy")
    os.makedirs(os.path.join(root, DATA_DIR), exist_ok=True)
    for name in names or EXERCISES:
        if name not in bodies:
            log(f"warning: exercise {name} has no markers in {EXERCISES[name].file}; recording its code as it is",
                file=sys.stderr)
        make_inputs, outputs = CASES[name]
        inputs = make_inputs(torch.Generator().manual_seed(sum(map(ord, name))))
        data = {"inputs": inputs, "outputs": {k: v.detach().clone() for k, v in outputs(inputs).items()}}
        torch.save(data, recorded_path(name, root))
        log(f"recorded {os.path.relpath(recorded_path(name, root), root)} ({len(data['outputs'])} outputs)")


def load_recorded(name, root=ROOT):
    import torch
    return torch.load(recorded_path(name, root), weights_only=True)


def flat_index(j, shape):
    import torch
    return [int(t) for t in torch.unravel_index(torch.tensor(j), shape)]


def compare(name, got, want, inputs=None):
    """None if the outputs match the recorded ones, else one line: which output differs and by how much."""
    import torch
    as_name, as_map, (low, high) = COMPARE_AS.get(name, ("", None, (-math.inf, math.inf)))
    for key, w in want.items():
        rtol, atol = TOLERANCE_OF_OUTPUT[name](inputs, key) if name in TOLERANCE_OF_OUTPUT \
            else TOLERANCE.get(name, DEFAULT_TOLERANCE)
        if key not in got:
            return f"{name}: no output {key!r}"
        g = got[key]
        if not isinstance(g, torch.Tensor):
            return f"{name}: {key} is a {type(g).__name__}, not a tensor"
        if g.shape != w.shape:
            return f"{name}: {key} has shape {tuple(g.shape)}, the reference {tuple(w.shape)}"
        if g.dtype != w.dtype:
            return f"{name}: {key} is {g.dtype}, the reference gives {w.dtype}"
        shape, g, w = w.shape, g.detach().double().reshape(-1), w.double().reshape(-1)
        outside = (g < low) | (g > high)
        if outside.any():
            j = int(outside.int().argmax())
            return f"{name}: {key} is {g[j].item():.6g} at {flat_index(j, shape)}, outside [{low:g}, {high:g}]"
        if as_map:
            g, w, key = as_map(g), as_map(w), f"{as_name} of {key}"
        err = torch.where((g - w).isnan(), float("inf"), (g - w).abs())
        allowed = atol + rtol * w.abs()
        if (err > allowed).any():
            j = int((err - allowed).argmax())
            return (f"{name}: {key} is off by {err[j].item():.3g} at {flat_index(j, shape)} (got {g[j].item():.6g}, "
                    f"want {w[j].item():.6g}, allowed {allowed[j].item():.1g})")
    return None


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python exercises.py make DIR [--only=a,b] | grade [DIR] | record"
    if not argv or argv[0] not in ("make", "grade", "record"):
        print(f"error: bad command {' '.join(argv)!r}; {usage}", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    only = [a.split("=", 1)[1] for a in rest if a.startswith("--only=")]
    args = [a for a in rest if not a.startswith("--only=")]
    flags = [a for a in args if a.startswith("-")]
    try:
        if flags or (only and cmd != "make") or len(args) > 1 or (cmd == "make" and len(args) != 1) \
                or (cmd == "record" and args):
            raise ExerciseError(f"bad arguments {' '.join(rest)!r}; {usage}")
        if cmd == "make":
            make(args[0], only[-1] if only else None)
            return 0
        if cmd == "grade":
            return 0 if grade(args[0] if args else ROOT) else 1
        record()
        return 0
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
