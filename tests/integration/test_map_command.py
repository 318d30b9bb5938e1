#!/usr/bin/env python3
"""`okegw map`: runs one connector's Lua mapping offline on a sample body.

    okegw map -c FILE --connector NAME --interaction ID --in SAMPLE.json [--reverse]

prints the mapped JSON and exits 0, exits 1 with FILE:LINE on stderr when the
mapping fails, and 2 on bad usage. The identity tests run every valid OKE
example body in fixtures/examples/ (copies of the OKE examples) through a
connector without scripts and one whose scripts give back what they get."""
import concurrent.futures
import glob
import json
import math
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okegwtest import FIXTURES, check, conf, main, time_scale, wrapper  # noqa: E402

EXAMPLES = os.path.join(FIXTURES, "examples")

# the interaction ids okegw knows (core/oke/interaction.c)
INTERACTIONS = ["flow0.list_components", "flow0.get_component", "flow2.put_offering",
                "flow2.patch_offering", "flow2.get_offering", "flow2.list_associations",
                "flow2.put_association", "flow2.patch_association", "flow2.get_association",
                "flow2.get_association_url", "flow3.patch_association"]


# --------------------------------------------------------------------------
# helpers

def run_map(t, conf_path, *args, timeout=20.0):
    """okegw map -c conf_path ARGS; returns (rc, stdout, stderr)."""
    p = subprocess.run(wrapper() + [t.binary, "map", "-c", conf_path] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout * time_scale(), cwd=t.workdir)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def mapped(t, conf_path, connector, interaction, sample, reverse=False):
    """Runs the mapping and returns (rc, parsed stdout or None, stdout, stderr)."""
    args = ["--connector", connector, "--interaction", interaction, "--in", sample]
    if reverse:
        args.append("--reverse")
    rc, out, err = run_map(t, conf_path, *args)
    try:
        val = json.loads(out) if out.strip() else None
    except ValueError:
        val = None
    return rc, val, out, err


def same_json(a, b, path="$"):
    """None when a and b are the same JSON value, numbers compared by value (an
    integer and a float of equal value are equal; true is not 1); otherwise
    where they differ."""
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return None if type(a) is type(b) and a == b else "%s: %r != %r" % (path, a, b)
    if isinstance(a, num) and isinstance(b, num):
        if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
            return None
        return "%s: %r != %r" % (path, a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return "%s: keys differ: only in output %r, only in input %r" % (
                path, sorted(set(a) - set(b)), sorted(set(b) - set(a)))
        for k in a:
            d = same_json(a[k], b[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: %d items != %d items" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = same_json(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return "%s: %r (%s) != %r (%s)" % (path, a, type(a).__name__, b, type(b).__name__)
    return None


def interaction_for(name):
    """The interaction an example body belongs to, from its file name (bodies
    of flows okegw does not route yet go to the flow-2 interaction of the same
    method and resource, e.g. flow1_put_offering_* to flow2.put_offering)."""
    n = os.path.basename(name)
    rules = [(r"get_components_", "flow0.list_components"),
             (r"get_component_", "flow0.get_component"),
             (r"get_(offering_)?associations_", "flow2.list_associations"),
             (r"get_offering(s)?_", "flow2.get_offering"),
             (r"get_association_url_", "flow2.get_association_url"),
             (r"get_(person_)?association", "flow2.get_association"),
             (r"put_offering_", "flow2.put_offering"),
             (r"patch_offering_", "flow2.patch_offering"),
             (r"put_association_", "flow2.put_association"),
             (r"^flow3_patch_association_", "flow3.patch_association"),
             (r"patch_association_", "flow2.patch_association")]
    for pat, iid in rules:
        if re.search(pat, n):
            return iid
    return "flow2.put_offering"


def examples():
    files = sorted(glob.glob(os.path.join(EXAMPLES, "*.json")))
    return [f for f in files if not os.path.basename(f).startswith("invalid_")]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def sim(**kw):
    d = {"plugin": "sim", "role": "ta", "phase": "live"}
    d.update(kw)
    return d


def setup(t, **gateway):
    """plugins.conf with connectors:
      empty    scripts = an empty folder
      default  no scripts key and no scripts/default folder
      ident    identity to_peer/from_peer for every interaction id
      marker   to_peer/from_peer stamp the direction and ctx into the message
      broken   flow2.put_offering fails at run time in several ways
    Returns (conf path, {name: scripts folder})."""
    dirs = {n: os.path.join(t.workdir, "maps", n) for n in ("empty", "ident", "marker", "broken")}
    os.makedirs(dirs["empty"], exist_ok=True)
    for iid in INTERACTIONS:
        write(os.path.join(dirs["ident"], iid + ".lua"),
              "function to_peer(msg) return msg end\nfunction from_peer(msg) end\n")
    write(os.path.join(dirs["marker"], "flow2.put_offering.lua"),
          "function to_peer(msg, ctx)\n"
          "  msg.x_direction = 'to_peer'\n"
          "  msg.x_ctx = {connector = ctx.connector, interaction = ctx.interaction,\n"
          "               direction = ctx.direction, system = ctx.config.test_system}\n"
          "  return msg\n"
          "end\n"
          "function from_peer(msg, ctx)\n"
          "  msg.x_direction = 'from_peer'\n"
          "  msg.x_ctx = {connector = ctx.connector, interaction = ctx.interaction,\n"
          "               direction = ctx.direction, system = ctx.config.test_system}\n"
          "end\n")
    write(os.path.join(dirs["broken"], "flow2.put_offering.lua"), BROKEN)
    text = conf([("empty", sim(scripts=dirs["empty"])),
                 ("default", sim()),
                 ("ident", sim(scripts=dirs["ident"])),
                 ("marker", sim(scripts=dirs["marker"], test_system="MarkerToets")),
                 ("broken", sim(scripts=dirs["broken"]))], **gateway)
    path = write(os.path.join(t.workdir, "plugins.conf"), text)
    return path, dirs


BROKEN = """function to_peer(msg, ctx)
  if msg.x_case == 'nil_index' then return msg.nothing.deeper end
  if msg.x_case == 'error' then error('the sample is not acceptable') end
  if msg.x_case == 'loop' then while true do end end
  if msg.x_case == 'forbidden' then os.execute('true') end
  return msg
end
function from_peer(msg)
  error('from_peer refuses')
end
"""


def broken_line(case):
    for i, line in enumerate(BROKEN.split("\n"), 1):
        if "'%s'" % case in line:
            return i
    raise AssertionError(case)


# --------------------------------------------------------------------------
# identity over every example

def test_examples_fixtures_present(t):
    files = examples()
    check(len(files) >= 50, "fixtures/examples/ should hold every valid OKE example body, found %d"
          % len(files))
    for f in files:
        with open(f, "rb") as fh:
            json.loads(fh.read().decode("utf-8"))


def test_identity_over_all_examples(t):
    conf_path, _ = setup(t)
    files = examples()
    check(files, "no examples in %s" % EXAMPLES)
    jobs = []
    for f in files:
        iid = interaction_for(f)
        jobs.append(("empty", iid, f, False))
        jobs.append(("ident", iid, f, False))
        jobs.append(("ident", iid, f, True))
    jobs.append(("default", "flow2.put_offering", os.path.join(EXAMPLES, "flow2_put_offering_request.json"),
                 False))

    def one(job):
        connector, iid, f, rev = job
        with open(f, "rb") as fh:
            want = json.loads(fh.read().decode("utf-8"))
        rc, got, out, err = mapped(t, conf_path, connector, iid, f, rev)
        what = "%s %s%s %s" % (connector, iid, " --reverse" if rev else "", os.path.basename(f))
        if rc != 0:
            return "%s: exit %d: %s" % (what, rc, err.strip()[-400:])
        if got is None and out.strip() != "null":
            return "%s: output is not JSON: %r" % (what, out[:300])
        d = same_json(got, want)
        return "%s: output differs from input at %s" % (what, d) if d else None

    workers = 4
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        problems = [p for p in ex.map(one, jobs) if p]
    check(not problems, "%d of %d identity mappings changed the body or failed:\n  %s"
          % (len(problems), len(jobs), "\n  ".join(problems[:15])))
    t.notes.append("%d runs over %d examples" % (len(jobs), len(files)))


def test_numbers_compare_by_value(t):
    """Integers, floats and the JSON literals survive the crossing into Lua and
    back: every number comes out as the same double it went in as (1e21 may be
    written 1e+21, 3.0 as 3, but 0.30000000000000004 must not become 0.3)."""
    conf_path, _ = setup(t)
    sample = {"int": 123456789012, "neg": -42, "zero": 0, "float": 7.5, "tenth": 0.1,
              "small": -2.25e-05, "big": 1e21, "integral_float": 3.0,
              "two_53": 9007199254740992, "sixteen_digits": 1234567890123456,
              "seventeen_digits": 0.30000000000000004, "third": 1 / 3,
              "t": True, "f": False, "n": None, "empty_array": [], "empty_object": {},
              "nested": [[1, 2.5, [None]], {"a": [{}]}], "text": "Zitting \u00e9\u00e8 \u2713 \"quoted\""}
    path = write(os.path.join(t.workdir, "numbers.json"), json.dumps(sample, ensure_ascii=False))
    problems = []
    for connector in ("empty", "ident"):
        for rev in (False, True):
            what = "%s%s" % (connector, " --reverse" if rev else "")
            rc, got, out, err = mapped(t, conf_path, connector, "flow2.put_offering", path, rev)
            check(rc == 0, "%s: exit %d: %s" % (what, rc, err))
            check(isinstance(got, dict), "%s: output is not a JSON object: %r" % (what, out[:300]))
            for k in sample:
                d = same_json(got.get(k), sample[k], k)
                if d:
                    problems.append("%s: %s" % (what, d))
            if set(got) != set(sample):
                problems.append("%s: keys differ: %r" % (what, sorted(set(got) ^ set(sample))))
    check(not problems, "%d value(s) changed on the way through okegw map:\n  %s"
          % (len(problems), "\n  ".join(problems)))


# --------------------------------------------------------------------------
# directions and context

def test_reverse_runs_from_peer(t):
    conf_path, _ = setup(t)
    sample = os.path.join(EXAMPLES, "flow2_put_offering_request.json")
    with open(sample) as f:
        want = json.load(f)
    rc, got, out, err = mapped(t, conf_path, "marker", "flow2.put_offering", sample)
    check(rc == 0 and isinstance(got, dict), "to_peer: exit %d: %s%s" % (rc, out, err))
    check(got.get("x_direction") == "to_peer", "without --reverse to_peer should run: %r" % got.get("x_direction"))
    check(got.get("x_ctx") == {"connector": "marker", "interaction": "flow2.put_offering",
                               "direction": "to_peer", "system": "MarkerToets"},
          "ctx seen by to_peer: %r" % got.get("x_ctx"))
    rest = {k: v for k, v in got.items() if not k.startswith("x_")}
    check(same_json(rest, want) is None, "to_peer changed more than its marks: %s" % same_json(rest, want))

    rc, got, out, err = mapped(t, conf_path, "marker", "flow2.put_offering", sample, reverse=True)
    check(rc == 0 and isinstance(got, dict), "from_peer: exit %d: %s%s" % (rc, out, err))
    check(got.get("x_direction") == "from_peer", "--reverse should run from_peer: %r" % got.get("x_direction"))
    check(got.get("x_ctx", {}).get("direction") == "from_peer", "ctx seen by from_peer: %r" % got.get("x_ctx"))

    # an interaction the connector has no script for passes unchanged
    rc, got, out, err = mapped(t, conf_path, "marker", "flow2.put_association",
                               os.path.join(EXAMPLES, "flow2_put_association_student_request.json"))
    check(rc == 0, "no script for the interaction: exit %d: %s" % (rc, err))
    with open(os.path.join(EXAMPLES, "flow2_put_association_student_request.json")) as f:
        check(same_json(got, json.load(f)) is None, "a message without a script should pass unchanged")


# --------------------------------------------------------------------------
# errors

def test_failing_script_exit_1(t):
    conf_path, dirs = setup(t, lua_instructions=100000)
    base = os.path.join(EXAMPLES, "flow2_put_offering_request.json")
    with open(base) as f:
        body = json.load(f)
    for case in ("nil_index", "error", "loop", "forbidden"):
        sample = dict(body, x_case=case)
        path = write(os.path.join(t.workdir, "case_%s.json" % case), json.dumps(sample))
        rc, got, out, err = mapped(t, conf_path, "broken", "flow2.put_offering", path)
        check(rc == 1, "%s: want exit 1, got %d: stdout %r stderr %r" % (case, rc, out[:200], err))
        want = "flow2.put_offering.lua:%d:" % broken_line(case)
        check(want in err, "%s: stderr should name %s, got %r" % (case, want, err))
        check(not out.strip(), "%s: nothing should be printed on stdout: %r" % (case, out[:200]))
    # the error message itself reaches the user
    rc, _, _, err = mapped(t, conf_path, "broken", "flow2.put_offering",
                           os.path.join(t.workdir, "case_error.json"))
    check("the sample is not acceptable" in err, "the error() message is missing: %r" % err)
    # the same script's working path maps fine, and --reverse runs (the failing) from_peer
    rc, got, out, err = mapped(t, conf_path, "broken", "flow2.put_offering", base)
    check(rc == 0 and same_json(got, body) is None, "broken's good path: exit %d %s" % (rc, err))
    rc, got, out, err = mapped(t, conf_path, "broken", "flow2.put_offering", base, reverse=True)
    check(rc == 1 and "flow2.put_offering.lua:%d:" % broken_line("from_peer refuses") in err,
          "--reverse should run the failing from_peer: exit %d, %r" % (rc, err))


def test_broken_script_at_load_exit_1(t):
    conf_path, dirs = setup(t)
    write(os.path.join(dirs["broken"], "flow2.get_offering.lua"),
          "function from_peer(msg)\n  msg.x = = 1\nend\n")
    rc, got, out, err = mapped(t, conf_path, "broken", "flow2.put_offering",
                               os.path.join(EXAMPLES, "flow2_put_offering_request.json"))
    check(rc == 1, "a connector with a script that does not compile: want exit 1, got %d: %r" % (rc, err))
    check("flow2.get_offering.lua:2:" in err, "stderr should name flow2.get_offering.lua:2:, got %r" % err)


def test_unknown_interaction_exit_2(t):
    conf_path, _ = setup(t)
    rc, got, out, err = mapped(t, conf_path, "ident", "flow2.put_offerings",
                               os.path.join(EXAMPLES, "flow2_put_offering_request.json"))
    check(rc == 2, "unknown interaction id: want exit 2, got %d: %r" % (rc, err))
    check("flow2.put_offerings" in err, "stderr should name the unknown id: %r" % err)
    missing = [i for i in INTERACTIONS if i not in err]
    check(not missing, "stderr should list the known ids, missing %r:\n%s" % (missing, err))
    check(not out.strip(), "nothing on stdout: %r" % out)


def test_unknown_connector_exit_2(t):
    conf_path, _ = setup(t)
    rc, got, out, err = mapped(t, conf_path, "nosuch", "flow2.put_offering",
                               os.path.join(EXAMPLES, "flow2_put_offering_request.json"))
    check(rc == 2, "unknown connector: want exit 2, got %d: %r" % (rc, err))
    check("nosuch" in err, "stderr should name the connector: %r" % err)
    check(not out.strip(), "nothing on stdout: %r" % out)


def test_bad_sample_exit_2(t):
    conf_path, _ = setup(t)
    for name, text in (("not_json.json", "{\"offeringId\": \"x\", oops}"),
                       ("empty.json", ""),
                       ("text.json", "Rekenen 3F\n"),
                       ("truncated.json", "{\"a\": [1, 2")):
        path = write(os.path.join(t.workdir, name), text)
        for connector in ("ident", "empty"):
            rc, got, out, err = mapped(t, conf_path, connector, "flow2.put_offering", path)
            check(rc == 2, "%s via %s: want exit 2, got %d: %r" % (name, connector, rc, err))
            check(name in err, "%s: stderr should name the sample: %r" % (name, err))
    rc, got, out, err = mapped(t, conf_path, "ident", "flow2.put_offering",
                               os.path.join(t.workdir, "does_not_exist.json"))
    check(rc == 2, "a sample that does not exist: want exit 2, got %d: %r" % (rc, err))


def test_bad_usage_exit_2(t):
    conf_path, _ = setup(t)
    sample = os.path.join(EXAMPLES, "flow2_put_offering_request.json")
    for args in (["--connector", "ident", "--interaction", "flow2.put_offering"],          # no --in
                 ["--connector", "ident", "--in", sample],                                  # no --interaction
                 ["--interaction", "flow2.put_offering", "--in", sample],                   # no --connector
                 ["--connector", "ident", "--interaction", "flow2.put_offering", "--in", sample, "--bogus"],
                 ["--connector"]):
        rc, out, err = run_map(t, conf_path, *args)
        check(rc == 2, "okegw map %s: want exit 2, got %d: %r" % (" ".join(args), rc, err))
        check("usage" in err, "okegw map %s: stderr should show the usage: %r" % (" ".join(args), err))
    rc, out, err = run_map(t, os.path.join(t.workdir, "missing.conf"), "--connector", "ident",
                           "--interaction", "flow2.put_offering", "--in", sample)
    check(rc == 2, "a config file that does not exist: want exit 2, got %d: %r" % (rc, err))


if __name__ == "__main__":
    main(globals())
