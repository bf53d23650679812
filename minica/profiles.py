"""Profiles: YAML files parsed once into frozen Profile objects, with lookup and extends."""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography.x509 import ObjectIdentifier

from .errors import MinicaError, PolicyError, ProfileError
from .keys import KEY_TYPES
from .names import NAME_KINDS, SUBJECT_FIELDS, parse_dns
from .usages import KEY_USAGES, eku_name, parse_eku

T = TypeVar("T")

NAME_REQUIREMENTS = (*NAME_KINDS, "dns_or_ip")
_TOP_KEYS = (
    "description",
    "validity_days",
    "key_usage",
    "extended_key_usage",
    "extended_key_usage_critical",
    "basic_constraints",
    "subject",
    "names",
    "keys",
    "policies",
    "ocsp_no_check",
    "extends",
)
# Far beyond any real chain (and cryptography encodes no more than 64 bits).
MAX_PATH_LENGTH = 255
_DEFAULT_SUBJECT = (
    "common_name",
    "organization",
    "organizational_unit",
    "locality",
    "state",
    "country",
)


@dataclass(frozen=True)
class NamePolicy:
    """Which subject alternative names a profile requires and allows."""

    required: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    copy_cn: bool = False
    allowed_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """A validated profile: everything the issuer needs besides the request and the CA."""

    name: str
    description: str
    source: str
    validity_days: int = 365
    key_usage: tuple[str, ...] = ("digital_signature",)
    extended_key_usage: tuple[ObjectIdentifier, ...] = ()
    extended_key_usage_critical: bool = False
    ca: bool = False
    path_length: int | None = None
    subject_required: tuple[str, ...] = ("common_name",)
    subject_allowed: tuple[str, ...] = _DEFAULT_SUBJECT
    names: NamePolicy = field(default_factory=NamePolicy)
    key_types: tuple[str, ...] = KEY_TYPES
    policies: tuple[ObjectIdentifier, ...] = ()
    ocsp_no_check: bool = False

    def __post_init__(self) -> None:
        # Checked here, where every profile passes: YAML, the root's, `--path-len`.
        length = self.path_length
        if length is not None and not 0 <= length <= MAX_PATH_LENGTH:
            raise PolicyError(f"a path length of {length} is not possible (0 to {MAX_PATH_LENGTH})")

    def to_yaml(self) -> str:
        """The resolved profile (after extends) in the schema's own form."""
        constraints: dict[str, Any] = {"ca": self.ca}
        if self.ca:
            constraints["path_length"] = self.path_length
        document = {
            "description": self.description,
            "validity_days": self.validity_days,
            "key_usage": list(self.key_usage),
            "extended_key_usage": [eku_name(oid) for oid in self.extended_key_usage],
            "extended_key_usage_critical": self.extended_key_usage_critical,
            "basic_constraints": constraints,
            "subject": {
                "required": list(self.subject_required),
                "allowed": list(self.subject_allowed),
            },
            "names": {
                "required": list(self.names.required),
                "allowed": list(self.names.allowed),
                "copy_cn": self.names.copy_cn,
                "allowed_domains": list(self.names.allowed_domains),
            },
            "keys": {"allowed": list(self.key_types)},
            "policies": [oid.dotted_string for oid in self.policies],
            "ocsp_no_check": self.ocsp_no_check,
        }
        return yaml.safe_dump(document, sort_keys=False)


def builtin_dir() -> Path:
    """The built-in profiles: shipped inside the package, or the checkout's profiles/."""
    packaged = Path(__file__).parent / "profiles"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "profiles"


def find(name: str, ca_profiles: Path | None = None) -> Profile:
    """The profile called ``name``: a path, else CA_DIR/profiles/NAME.yaml, else a built-in.

    Raises ProfileError if there is none or it is invalid.
    """
    path = _locate(name, ca_profiles)
    return _parse(_load_merged(path, ca_profiles, ()), path)


def available(ca_profiles: Path | None = None) -> list[Profile]:
    """Every profile a CA can use: its own copies first, then built-ins it does not shadow."""
    folders = [folder for folder in (ca_profiles, builtin_dir()) if folder and folder.is_dir()]
    paths = {path.stem: path for folder in reversed(folders) for path in folder.glob("*.yaml")}
    return [_parse(_load_merged(path, ca_profiles, ()), path) for _, path in sorted(paths.items())]


def is_path(name: str) -> bool:
    """Whether a profile name given by a user is a file's path rather than a name."""
    return "/" in name or name.endswith(".yaml")


def _locate(name: str, ca_profiles: Path | None, skip: Path | None = None) -> Path:
    if is_path(name):
        path = Path(name)
        if not path.is_file():
            raise ProfileError(f"profile file {name} does not exist")
        return path
    candidates = [builtin_dir() / f"{name}.yaml"]
    if ca_profiles is not None:
        candidates.insert(0, ca_profiles / f"{name}.yaml")
    for path in candidates:
        if path.is_file() and (skip is None or path.resolve() != skip.resolve()):
            return path
    known = sorted(
        {
            p.stem
            for folder in (ca_profiles, builtin_dir())
            if folder and folder.is_dir()
            for p in folder.glob("*.yaml")
        }
    )
    raise ProfileError(f"unknown profile {name!r} (available: {', '.join(known)})")


def _load_merged(path: Path, ca_profiles: Path | None, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The file's mapping with its ``extends`` chain merged in beneath it."""
    if path.resolve() in seen:
        raise ProfileError(f"{path}: extends: profiles extend each other in a loop")
    raw = _read_yaml(path)
    base_name = raw.get("extends")
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise ProfileError(f"{path}: extends: must be a profile name")
    try:
        base_path = _locate(base_name, ca_profiles, skip=path)
    except ProfileError as error:
        raise ProfileError(f"{path}: extends: {error}") from None
    base = _load_merged(base_path, ca_profiles, (*seen, path.resolve()))
    return _deep_merge(base, {key: value for key, value in raw.items() if key != "extends"})


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            value = _deep_merge(base[key], value)
        merged[key] = value
    return merged


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML that refuses duplicate keys: a repeated key must not silently win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        for key in keys:
            if keys.count(key) > 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ProfileError(f"{path}: not a valid profile YAML: {problem}") from None
    if not isinstance(document, dict):
        raise ProfileError(f"{path}: must be a YAML mapping of profile settings")
    return document


class _Checker:
    """Reads a raw mapping, collecting every problem as 'key: message' instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def section(self, raw: dict[str, Any], key: str, known: tuple[str, ...]) -> dict[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            self.problems.append(f"{key}: must be a mapping")
            return {}
        self.unknown_keys(value, known, prefix=f"{key}: ")
        return value

    def unknown_keys(self, raw: dict[str, Any], known: tuple[str, ...], prefix: str = "") -> None:
        for key in raw:
            if key not in known:
                self.problems.append(
                    f"{prefix}unknown key {_short(key)} (known: {', '.join(known)})"
                )

    def get(
        self, raw: dict[str, Any], key: str, parse: Callable[[Any], T], default: T, prefix: str = ""
    ) -> T:
        if key not in raw:
            return default
        try:
            return parse(raw[key])
        except (ValueError, MinicaError) as error:
            self.problems.append(f"{prefix}{key}: {error}")
            return default


def _parse(raw: dict[str, Any], path: Path) -> Profile:
    """A Profile from a merged mapping; ProfileError listing every problem with file and key."""
    check = _Checker()
    check.unknown_keys(raw, _TOP_KEYS)
    constraints = check.section(raw, "basic_constraints", ("ca", "path_length"))
    subject = check.section(raw, "subject", ("required", "allowed"))
    names = check.section(raw, "names", ("required", "allowed", "copy_cn", "allowed_domains"))
    keys = check.section(raw, "keys", ("allowed",))
    subject_fields = tuple(SUBJECT_FIELDS)
    name_policy = NamePolicy(
        required=check.get(names, "required", _words(NAME_REQUIREMENTS), (), "names: "),
        allowed=check.get(names, "allowed", _words(NAME_KINDS), (), "names: "),
        copy_cn=check.get(names, "copy_cn", _bool, False, "names: "),
        allowed_domains=check.get(names, "allowed_domains", _domains, (), "names: "),
    )
    profile = Profile(
        name=path.stem,
        source=str(path),
        description=check.get(raw, "description", _line, ""),
        validity_days=check.get(raw, "validity_days", _positive_int, 365),
        key_usage=check.get(raw, "key_usage", _words(KEY_USAGES), ("digital_signature",)),
        extended_key_usage=check.get(raw, "extended_key_usage", _ekus, ()),
        extended_key_usage_critical=check.get(raw, "extended_key_usage_critical", _bool, False),
        ca=check.get(constraints, "ca", _bool, False, "basic_constraints: "),
        path_length=check.get(
            constraints, "path_length", _path_length, None, "basic_constraints: "
        ),
        subject_required=check.get(
            subject, "required", _words(subject_fields), ("common_name",), "subject: "
        ),
        subject_allowed=check.get(
            subject, "allowed", _words(subject_fields), _DEFAULT_SUBJECT, "subject: "
        ),
        names=name_policy,
        key_types=check.get(keys, "allowed", _words(KEY_TYPES), KEY_TYPES, "keys: "),
        policies=check.get(raw, "policies", _oids, ()),
        ocsp_no_check=check.get(raw, "ocsp_no_check", _bool, False),
    )
    check.problems += _inconsistencies(profile, raw)
    if check.problems:
        shown = check.problems[:_MAX_PROBLEMS]
        if len(check.problems) > _MAX_PROBLEMS:
            shown.append(f"and {len(check.problems) - _MAX_PROBLEMS} more problems")
        raise ProfileError(f"{path}: " + "; ".join(shown))
    return profile


def _inconsistencies(profile: Profile, raw: dict[str, Any]) -> list[str]:
    """Combinations that each key allows alone but that make no sense together."""
    problems = []
    if "description" not in raw:
        problems.append("description: missing (one line saying what the profile is for)")
    for name in profile.subject_required:
        if name not in profile.subject_allowed:
            problems.append(f"subject: required field {name!r} is not in allowed")
    for kind in profile.names.required:
        wanted = ("dns", "ip") if kind == "dns_or_ip" else (kind,)
        if not set(wanted) & set(profile.names.allowed):
            problems.append(f"names: required {kind!r} is not in allowed")
    constraints = raw.get("basic_constraints")
    if isinstance(constraints, dict) and "path_length" in constraints and not profile.ca:
        problems.append("basic_constraints: path_length needs ca: true")
    if not profile.ca and {"key_cert_sign", "crl_sign"} & set(profile.key_usage):
        problems.append("key_usage: key_cert_sign and crl_sign need basic_constraints ca: true")
    if profile.ca and "key_cert_sign" not in profile.key_usage:
        problems.append("key_usage: a CA profile needs key_cert_sign")
    time_stamping = parse_eku("time_stamping")
    if time_stamping in profile.extended_key_usage and (
        len(profile.extended_key_usage) > 1 or not profile.extended_key_usage_critical
    ):  # RFC 3161 section 2.3
        problems.append("extended_key_usage: time_stamping must be the only EKU, and critical")
    return problems


_MAX_PROBLEMS = 10  # in one message; a file with more needs more than a reading
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring = 2, 4, 4, 60


def _short(value: Any) -> str:
    """A value for an error message, cut short (YAML aliases can make huge values)."""
    return _REPR.repr(value)


def _line(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
        raise ValueError("must be one line of text")
    return value.strip()


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_short(value)}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a whole number above 0, not {_short(value)}")
    return value


def _path_length(value: Any) -> int | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PATH_LENGTH
    ):
        raise ValueError(
            f"must be a whole number of 0 or more (at most {MAX_PATH_LENGTH}), or null, "
            f"not {_short(value)}"
        )
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not {_short(value)}")
    return value


def _words(vocabulary: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        words = _list(value)
        for word in words:
            if word not in vocabulary:
                raise ValueError(f"unknown name {_short(word)} (known: {', '.join(vocabulary)})")
        return tuple(dict.fromkeys(words))

    return parse


def _ekus(value: Any) -> tuple[ObjectIdentifier, ...]:
    oids = []
    for item in _list(value):
        try:
            oids.append(parse_eku(str(item)))
        except ValueError:
            raise ValueError(
                f"unknown name {_short(item)} (known: server_auth, client_auth, code_signing, "
                "email_protection, time_stamping, ocsp_signing, any, or a dotted OID)"
            ) from None
    return tuple(dict.fromkeys(oids))


def _oids(value: Any) -> tuple[ObjectIdentifier, ...]:
    oids = []
    for item in _list(value):
        parts = str(item).split(".")
        if len(parts) < 2 or not all(part.isdigit() for part in parts):
            raise ValueError(f"{_short(item)} is not a dotted OID such as 2.23.140.1.2.1")
        oids.append(ObjectIdentifier(str(item)))
    return tuple(oids)


def _domains(value: Any) -> tuple[str, ...]:
    domains = _list(value)
    for item in domains:
        if str(item).startswith("*"):
            raise ValueError(f"{_short(item)}: give the domain itself; names under it are included")
    return tuple(parse_dns(str(item)) for item in domains)
