"""
Safe configurator: nanoGPT's `python train.py [config/file.py ...] [--key=value ...]`, without exec.

Keys come from config dataclasses whose fields carry metadata {"help": "one line", "choices": (...)}.
Order of precedence: dataclass defaults < config files (in order) < --key=value (in order).
Config files may hold only `key = literal` statements (plus comments and docstrings); every value,
from a file or the command line, is parsed with ast.literal_eval and checked against the field's type
and choices. Unknown keys are refused with the closest valid key suggested (difflib), so a typo never
silently does nothing. Ints are accepted for floats (`--learning_rate=1`), bools accept
True/False/true/false/1/0 and a bare `--flag`, strings may be unquoted on the command line.

API: ConfigError, parse_config(argv, *config_classes) -> dict, help_text(*config_classes) -> str,
     split_config(cfg, config_class) -> config_class instance.
"""
import ast
import dataclasses
import difflib
import os
import sys
import types
import typing


def config_field(default, help, choices=None):
    """A dataclass field that carries its --help line (and its valid choices) for this configurator."""
    meta = {"help": help}
    if choices:
        meta["choices"] = choices
    return dataclasses.field(default=default, metadata=meta)


class ConfigError(ValueError):
    """A bad config key or value; the message is one line."""


_MISSING = object()


def _fields(config_classes):
    """key -> (dataclasses.Field, resolved type, owning class); refuses keys defined twice."""
    table = {}
    for cls in config_classes:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable annotation: fall back to the raw one (checked loosely)
            hints = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.name in table:
                raise ConfigError(f"config key '{f.name}' is defined by both {table[f.name][2].__name__} "
                                  f"and {cls.__name__}")
            table[f.name] = (f, hints.get(f.name, f.type), cls)
    return table


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def _type_name(tp):
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _unknown(key, table, where):
    close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else "; run with --help to list the valid keys"
    return ConfigError(f"unknown config key '{key}'{where}{hint}")


def _literal(text):
    """ast.literal_eval of a string, or _MISSING when it is not a Python literal."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _MISSING


def _convert(value, tp, raw):
    """Return value converted to type tp, or _MISSING. raw is the cli text (None for file values)."""
    origin = typing.get_origin(tp)
    if tp is typing.Any or tp is object:
        return value if value is not _MISSING else raw
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or (raw is not None and raw.strip() in ("None", "none", "null"))):
            return None
        for a in args:  # bool before int before float before str (most specific first)
            if a is type(None):
                continue
            out = _convert(value, a, raw)
            if out is not _MISSING:
                return out
        return _MISSING
    if tp is type(None):
        return None if value is None else _MISSING
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if raw is not None and raw.strip() in ("true", "false"):
            return raw.strip() == "true"
        return _MISSING
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # max_iters=5e3
            return int(value)
        return _MISSING
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if raw is not None:
            try:
                return float(raw)  # inf, nan
            except ValueError:
                return _MISSING
        return _MISSING
    if tp is str:
        if raw is not None:  # cli: unquoted text is the string itself; a quoted literal is unquoted
            return value if isinstance(value, str) else raw
        return value if isinstance(value, str) else _MISSING
    if origin in (tuple, list) or tp in (tuple, list):
        if value is _MISSING and raw is not None and raw.strip() == "":
            value = ()
        if not isinstance(value, (tuple, list)):
            return _MISSING
        args = typing.get_args(tp)
        if args and not (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
            if origin is tuple and len(args) != len(value):
                return _MISSING
            elem = [args[0]] * len(value) if origin is list else list(args)
        else:
            elem = [args[0] if args else typing.Any] * len(value)
        out = [_convert(v, t, None) for v, t in zip(value, elem)]
        if any(o is _MISSING for o in out):
            return _MISSING
        return (origin or tp)(out)
    if origin is dict or tp is dict:
        return value if isinstance(value, dict) else _MISSING
    if isinstance(tp, type):
        return value if isinstance(value, tp) else _MISSING
    # unknown (e.g. an unresolved string annotation): accept any literal
    return value if value is not _MISSING else raw


def _coerce(key, value, raw, entry, where):
    """Validate one value against its field's type and choices; ConfigError on mismatch."""
    f, tp, _ = entry
    out = _convert(value, tp, raw)
    shown = raw if raw is not None else repr(value)
    if out is _MISSING:
        extra = " (True/False/true/false/1/0)" if tp is bool else ""
        raise ConfigError(f"bad value {shown!r} for {key}{where}: expected {_type_name(tp)}{extra}")
    choices = f.metadata.get("choices")
    if choices and out not in choices:
        raise ConfigError(f"bad value {out!r} for {key}{where}: choose from {', '.join(map(str, choices))}")
    return out


def _read_config_file(path, table):
    """Yield (key, value, where) for each `key = literal` statement of a config file."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file '{path}' not found")
    with open(path, encoding="utf-8") as fh:
        src = fh.read()
    try:
        tree = ast.parse(src, filename=path)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    for node in tree.body:
        where = f" ({path}:{node.lineno})"
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # docstring
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            key, vnode = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            key, vnode = node.target.id, node.value
        else:
            raise ConfigError(f"{path}:{node.lineno}: only `key = literal` statements are allowed in config "
                              f"files, found {type(node).__name__.lower()} `{_snippet(src, node)}`")
        if key not in table:
            raise _unknown(key, table, where)
        try:
            value = ast.literal_eval(vnode)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            raise ConfigError(f"{path}:{node.lineno}: value of '{key}' is not a literal: "
                              f"`{_snippet(src, vnode)}` (no expressions, names or calls)") from None
        yield key, value, where


def _snippet(src, node, n=60):
    s = (ast.get_source_segment(src, node) or "").splitlines()
    s = s[0] if s else ""
    return s if len(s) <= n else s[: n - 3] + "..."


def parse_config(argv, *config_classes):
    """Defaults, then config files (positional args), then --key=value overrides -> plain dict.

    `--help`/`-h` prints help_text and raises SystemExit(0). All errors are ConfigError (one line).
    """
    table = _fields(config_classes)
    argv = list(argv)
    if "--help" in argv or "-h" in argv:
        print(help_text(*config_classes))
        raise SystemExit(0)
    cfg = {}
    for key, (f, _, _) in table.items():
        d = _default(f)
        if d is not _MISSING:
            cfg[key] = d
    # command-line overrides are checked first (so `--lr 0.1` is reported as such, not as a missing
    # config file '0.1'), then applied after the files whatever their position
    files, overrides = [], []
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            files.append(arg)
            continue
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"bad argument '{arg}': use --key=value (or a config file path); --help lists keys")
        key, eq, raw = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key not in table:
            raise _unknown(key, table, f" (command line '{arg}')")
        if not eq:
            if table[key][1] is not bool:
                nxt = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else "VALUE"
                raise ConfigError(f"--{key} needs a value: use --{key}={nxt} (only bool keys may be bare flags)")
            overrides.append((key, True))
        else:
            overrides.append((key, _coerce(key, _literal(raw), raw, table[key], "")))
    for path in files:
        for key, value, where in _read_config_file(path, table):
            cfg[key] = _coerce(key, value, None, table[key], where)
    for key, value in overrides:
        cfg[key] = value
    missing = [k for k in table if k not in cfg]
    if missing:
        raise ConfigError(f"no value for required config key(s): {', '.join(missing)}")
    return cfg


def help_text(*config_classes):
    """Every key grouped by dataclass: --key=default  type  help [choices]."""
    table = _fields(config_classes)
    lines = [f"usage: python {os.path.basename(sys.argv[0]) or 'train.py'} [config/file.py ...] [--key=value ...]",
             "config files hold `key = literal` lines; later files and --key=value override earlier ones."]
    rows_by_cls = {}
    for key, (f, tp, cls) in table.items():
        d = _default(f)
        left = f"--{key}={'(required)' if d is _MISSING else repr(d)}"
        help_ = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            help_ += f" [{'|'.join(map(str, f.metadata['choices']))}]"
        rows_by_cls.setdefault(cls, []).append((left, _type_name(tp), help_))
    width = max((len(r[0]) for rows in rows_by_cls.values() for r in rows), default=0)
    twidth = max((len(r[1]) for rows in rows_by_cls.values() for r in rows), default=0)
    for cls, rows in rows_by_cls.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        title = doc[0] if doc and not doc[0].startswith(cls.__name__ + "(") else ""
        lines.append("")
        module = cls.__module__ if cls.__module__ != "__main__" else os.path.splitext(os.path.basename(sys.argv[0]))[0]
        lines.append(f"{cls.__name__} ({module})" + (f": {title}" if title else ""))
        for left, t, h in rows:
            lines.append(f"  {left:<{width}}  {t:<{twidth}}  {h}".rstrip())
    return "\n".join(lines)


def split_config(cfg, config_class):
    """An instance of config_class built from the keys of cfg that belong to it."""
    names = [f.name for f in dataclasses.fields(config_class) if f.init]
    return config_class(**{k: cfg[k] for k in names if k in cfg})
