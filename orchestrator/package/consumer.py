"""The consumer's deployment package: your [consumer] source folder, with its requirements.txt
installed for Lambda's runtime and architecture, zipped reproducibly; and where it lives in the
assets bucket (the key carries the hash, so a new package is a new key and an unchanged one is no
change to the consumer stack)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import OperationFailed
from orchestrator.package.dependencies import InstallTarget, install_requirements
from orchestrator.package.zipper import Package, PackageInput, collect, zip_package

REQUIREMENTS = "requirements.txt"
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit for a package's unzipped size (from S3 too)
# Every object we put in the assets bucket is under this prefix: `down` removes these, and only these.
ASSETS_PREFIX = "rds-streams/"
BUILD_DIR = ".rds-streams/build"


def build_cache(config: Config) -> Path:
    return config.source.parent.resolve() / BUILD_DIR


def package_inputs(source: Path, dependencies: Path | None) -> list[PackageInput]:
    """Dependencies first, your code last: your module wins a name clash, as on Lambda's path."""
    return ([dependencies] if dependencies is not None else []) + [source]


def forwarder_module(cache: Path) -> Path:
    """With a sink, our forwarder is the package's entry point and calls your handler after the sink
    took every record: its module, written where the zipper can read it (the wheel may be zipped)."""
    from blueprints.consumer import FORWARDER_MODULE
    from orchestrator.resources import forwarder_source

    path = cache / "forwarder" / f"{FORWARDER_MODULE}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    source = forwarder_source()
    if not path.is_file() or path.read_text(encoding="utf-8") != source:
        path.write_text(source, encoding="utf-8")
    return path


def build_consumer_package(config: Config) -> Package:
    """The package `up` uploads and the consumer stack names. Same source and requirements, same bytes."""
    source = config.consumer_source_path
    if source is None:
        raise ValueError("the shipped consumer is inlined in its template: there is no package to build")
    requirements = source / REQUIREMENTS
    dependencies = None
    if requirements.is_file() and requirements.read_text(encoding="utf-8").strip():
        dependencies = install_requirements(requirements, InstallTarget.lambda_runtime(config.consumer.architecture),
                                            build_cache(config) / "lambda-deps")
    inputs = package_inputs(source, dependencies)
    if config.consumer.sink != "log":
        inputs.insert(len(inputs) - 1, forwarder_module(build_cache(config)))
    size = sum(path.stat().st_size for path in collect(inputs).values())
    if size > UNZIPPED_LIMIT:
        raise OperationFailed(f"your consumer's package would be {size / 2**20:.0f} MB unzipped; Lambda takes at "
                              f"most {UNZIPPED_LIMIT // 2**20} MB ({source} and its requirements.txt)",
                              hint="drop what the handler does not need, or move big dependencies to a Lambda layer")
    return zip_package(inputs)


def package_key(config: Config, package: Package) -> str:
    return f"{ASSETS_PREFIX}{config.consumer.function_name}/{package.sha256}.zip"
