#!/usr/bin/env python3
"""Writes tests/corpus/invalid/*.yaml: malformed scenarios, each with the
substring its error message must contain on its first line (`# expect: ...`).
Re-run after changing the list; the files are committed."""
import os, pathlib

HERE = pathlib.Path(__file__).parent / "invalid"

BASE_STEP = "  - name: get\n    request: { method: GET, path: /health }\n"
BASE_LOAD = "load:\n  arrival: constant\n  stages:\n    - { for: 2s, rate: 10 }\n"

def scenario(workflow=BASE_STEP, load=BASE_LOAD, slos="", faults="", extra="", name="bad"):
    out = f"name: {name}\n" + extra + "workflow:\n" + workflow + load
    if faults:
        out += "faults:\n" + faults
    if slos:
        out += "slos:\n" + slos
    return out

def slo(line):
    return scenario(slos=f"  - {line}\n")

def stage(line):
    return scenario(load=f"load:\n  arrival: constant\n  stages:\n    - {line}\n")

def load_extra(line):
    return scenario(load=BASE_LOAD + f"  {line}\n")

def step(body):
    return scenario(workflow=body)

def fault(line, slos=""):
    return scenario(faults=f"  - {line}\n", slos=slos)

cases = {}
def case(name, text, expect):
    assert name not in cases, name
    cases[name] = (text, expect)

# YAML syntax
case("yaml_unclosed_flow", "name: [oops\n", "")
case("yaml_bad_indent", "name: x\n workflow:\n- a\n", "")
case("yaml_tab_indent", "name: x\nworkflow:\n\t- name: a\n", "")
case("yaml_unclosed_quote", 'name: "x\nworkflow: []\n', "")
case("yaml_duplicate_key", scenario().replace("name: bad\n", "name: bad\nname: again\n"), "")
case("yaml_colon_in_value", "name: a: b\n", "")
case("yaml_only_comment", "# nothing here\n", "empty")
case("empty_file", "", "empty")
case("whitespace_only", "   \n\n  \n", "empty")
case("yaml_list_top", "- name: x\n", "")
case("yaml_scalar_top", "just a string\n", "")
case("yaml_anchor_unknown", "name: *nope\n", "")
# wrong types
case("name_is_list", scenario().replace("name: bad", "name: [a, b]"), "")
case("workflow_is_number", "name: x\nworkflow: 5\n" + BASE_LOAD, "")
case("stages_is_map", "name: x\nworkflow:\n" + BASE_STEP + "load:\n  arrival: constant\n  stages: { for: 2s }\n", "")
case("rate_is_string", stage("{ for: 2s, rate: fast }"), "")
case("max_in_flight_negative", load_extra("max_in_flight: -1"), "")
case("max_in_flight_float", load_extra("max_in_flight: 1.5"), "")
case("seed_is_string", scenario(load="load:\n  arrival: poisson\n  seed: seven\n  stages:\n    - { for: 2s, rate: 10 }\n"), "")
case("status_is_string", step("  - name: get\n    request: { method: GET, path: / }\n    expect: { status: ok }\n"), "")
case("status_code_too_big", step("  - name: get\n    request: { method: GET, path: / }\n    expect: { status: [70000] }\n"), "")
case("headers_is_list", step("  - name: get\n    request: { method: GET, path: /, headers: [a, b] }\n"), "")
case("allow_unknown_not_bool", slo("{ name: p, metric: latency.p95, max: 1s, allow_unknown: maybe }"), "")
case("load_delivered_not_bool", scenario(extra="checks: { load_delivered: perhaps }\n"), "")
case("capture_is_list", step("  - name: get\n    request: { method: GET, path: / }\n    capture: [/id]\n"), "")
# unknown fields
case("unknown_top_field", scenario(extra="colour: blue\n"), "unknown field")
case("unknown_request_field", step("  - name: get\n    request: { method: GET, path: /, headerz: {} }\n"), "unknown field")
case("unknown_stage_field", stage("{ for: 2s, rate: 10, burst: 3 }"), "unknown field")
case("unknown_slo_field", slo("{ name: p, metric: latency.p95, max: 1s, severity: high }"), "unknown field")
case("unknown_load_field", load_extra("think_time: 1s"), "unknown field")
case("unknown_poll_field", step("  - name: get\n    request: { method: GET, path: / }\n    poll: { until: { pointer: /s, equals: 1 }, every: 1s, timeout: 2s, retries: 3 }\n"), "unknown field")
case("unknown_fault_field", fault("{ name: f, start: 0s, for: 1s, abort: { percentage: 1, http_status: 503 }, target: x }"), "unknown field")
case("unknown_window_field", slo("{ name: p, metric: latency.p95, max: 1s, window: { since: 1s } }"), "unknown field")
case("unknown_platform_field", scenario(extra="platform: { cluster: x }\n"), "unknown field")
case("unknown_arrival", scenario(load="load:\n  arrival: sometimes\n  stages:\n    - { for: 2s, rate: 10 }\n"), "")
case("misspelled_ramp", stage("{ for: 2s, rampto: 10 }"), "unknown field")
# missing keys
case("missing_name", scenario().replace("name: bad\n", ""), "missing field `name`")
case("missing_workflow", "name: x\n" + BASE_LOAD, "missing field `workflow`")
case("missing_load", "name: x\nworkflow:\n" + BASE_STEP, "missing field `load`")
case("missing_arrival", scenario(load="load:\n  stages:\n    - { for: 2s, rate: 10 }\n"), "missing field `arrival`")
case("missing_stages", scenario(load="load:\n  arrival: constant\n"), "missing field `stages`")
case("missing_step_name", step("  - request: { method: GET, path: / }\n"), "missing field `name`")
case("missing_request", step("  - name: get\n"), "missing field `request`")
case("missing_method", step("  - name: get\n    request: { path: / }\n"), "missing field `method`")
case("missing_path", step("  - name: get\n    request: { method: GET }\n"), "missing field `path`")
case("missing_stage_for", stage("{ rate: 10 }"), "missing field `for`")
case("missing_slo_name", slo("{ metric: latency.p95, max: 1s }"), "missing field `name`")
case("missing_fault_start", fault("{ name: f, for: 1s, abort: { percentage: 1, http_status: 503 } }"), "missing field `start`")
case("missing_poll_timeout", step("  - name: get\n    request: { method: GET, path: / }\n    poll: { until: { pointer: /s, equals: 1 }, every: 1s }\n"), "missing field `timeout`")
case("missing_abort_status", fault("{ name: f, start: 0s, for: 1s, abort: { percentage: 1 } }"), "missing field `http_status`")
# rates
case("rate_zero", stage("{ for: 2s, rate: 0 }"), "positive")
case("rate_negative", stage("{ for: 2s, rate: -5 }"), "positive")
case("rate_nan", stage("{ for: 2s, rate: .nan }"), "positive")
case("rate_infinite", stage("{ for: 2s, rate: .inf }"), "positive")
case("ramp_negative", stage("{ for: 2s, ramp_to: -1 }"), "ramp_to")
case("rate_and_ramp", stage("{ for: 2s, rate: 1, ramp_to: 2 }"), "not both")
case("neither_rate_nor_ramp", stage("{ for: 2s }"), "needs `rate`")
case("no_stages", scenario(load="load:\n  arrival: constant\n  stages: []\n"), "no stages")
case("no_starts_at_all", stage("{ for: 100ms, ramp_to: 1 }"), "no workflow start")
case("seed_with_constant", scenario(load="load:\n  arrival: constant\n  seed: 3\n  stages:\n    - { for: 2s, rate: 10 }\n"), "poisson")
case("max_in_flight_zero", load_extra("max_in_flight: 0"), "at least 1")
case("max_response_bytes_zero", load_extra("max_response_bytes: 0"), "at least 1")
case("duplicate_stage_names", scenario(load="load:\n  arrival: constant\n  stages:\n    - { name: a, for: 1s, rate: 1 }\n    - { name: a, for: 1s, rate: 1 }\n"), "unique")
# durations
case("duration_no_unit", stage("{ for: 20, rate: 10 }"), "no unit")
case("duration_bad_unit", stage("{ for: 2d, rate: 10 }"), "not a duration unit")
case("duration_words", stage("{ for: two seconds, rate: 10 }"), "duration")
case("duration_negative", stage("{ for: -2s, rate: 10 }"), "duration")
case("duration_zero_stage", stage("{ for: 0s, rate: 10 }"), "longer than 0s")
case("duration_float_no_unit", stage("{ for: 2.5, rate: 10 }"), "no unit")
case("request_timeout_zero", load_extra("request_timeout: 0s"), "longer than 0s")
case("request_timeout_no_unit", load_extra("request_timeout: 10"), "no unit")
case("poll_every_zero", step("  - name: get\n    request: { method: GET, path: / }\n    poll: { until: { pointer: /s, equals: 1 }, every: 0ms, timeout: 2s }\n"), "longer than 0s")
case("poll_timeout_below_every", step("  - name: get\n    request: { method: GET, path: / }\n    poll: { until: { pointer: /s, equals: 1 }, every: 2s, timeout: 1s }\n"), "shorter than `every`")
case("latency_threshold_no_unit", slo("{ name: p, metric: latency.p95, max: 300 }"), "no unit")
case("latency_threshold_percent", slo("{ name: p, metric: latency.p95, max: 3% }"), "duration")
# percentages
case("failure_rate_over_100", slo("{ name: e, metric: failure_rate, max: 101% }"), "outside 0%..100%")
case("failure_rate_bare_2", slo("{ name: e, metric: failure_rate, max: 2 }"), "2%")
case("failure_rate_negative", slo("{ name: e, metric: failure_rate, max: -1% }"), "outside")
case("failure_rate_words", slo("{ name: e, metric: failure_rate, max: low }"), "ratio")
case("fault_percentage_over_100", fault("{ name: f, start: 0s, for: 1s, abort: { percentage: 150, http_status: 503 } }"), "outside 0..100")
case("fault_percentage_negative", fault("{ name: f, start: 0s, for: 1s, delay: { percentage: -3, fixed_delay: 1s } }"), "outside 0..100")
# metrics and windows
case("unknown_metric", slo("{ name: e, metric: error_rate, max: 1% }"), "not a metric")
case("unknown_percentile", slo("{ name: p, metric: latency.p77x, max: 1s }"), "not a latency statistic")
case("percentile_100", slo("{ name: p, metric: latency.p100, max: 1s }"), "not a latency statistic")
case("unknown_step_metric", slo("{ name: p, metric: step.nope.latency.p95, max: 1s }"), "does not have")
case("step_metric_no_stat", slo("{ name: p, metric: step.get.p95, max: 1s }"), "step.<name>.latency.p95")
case("metric_and_promql", slo("{ name: p, metric: latency.p95, promql: up, max: 1s }"), "not both")
case("no_metric", slo("{ name: p, max: 1s }"), "needs `metric`")
case("no_threshold", slo("{ name: p, metric: latency.p95 }"), "threshold")
case("max_and_min", slo("{ name: p, metric: latency.p95, max: 1s, min: 1ms }"), "not both")
case("empty_promql", slo("{ name: p, promql: '  ', max: 1 }"), "empty")
case("dropped_fraction", slo("{ name: d, metric: dropped, max: 0.5 }"), "whole number")
case("window_stage_out_of_range", slo("{ name: p, metric: latency.p95, max: 1s, window: { stage: 4 } }"), "does not exist")
case("window_stage_zero", slo("{ name: p, metric: latency.p95, max: 1s, window: { stage: 0 } }"), "does not exist")
case("window_stage_unknown_name", slo("{ name: p, metric: latency.p95, max: 1s, window: { stage: warmup } }"), "no stage is named")
case("window_unknown_fault", slo("{ name: p, metric: latency.p95, max: 1s, window: { fault: nope } }"), "no fault is named")
case("window_to_before_from", slo("{ name: p, metric: latency.p95, max: 1s, window: { from: 2s, to: 1s } }"), "must be after")
case("window_after_end", slo("{ name: p, metric: latency.p95, max: 1s, window: { from: 10s } }"), "after the end")
case("window_two_forms", slo("{ name: p, metric: latency.p95, max: 1s, window: { from: 1s, stage: 1 } }"), "a window is one of")
case("window_empty", slo("{ name: p, metric: latency.p95, max: 1s, window: {} }"), "a window is one of")
case("duplicate_slo_names", scenario(slos="  - { name: p, metric: latency.p95, max: 1s }\n  - { name: p, metric: latency.p99, max: 1s }\n"), "unique")
# workflow references
case("capture_never_set", step("  - name: get\n    request: { method: GET, path: \"/w/${id}\" }\n"), "never captured")
case("capture_used_same_step", step("  - name: get\n    request: { method: GET, path: \"/w/${id}\" }\n    capture: { id: /id }\n"), "not set yet")
case("capture_used_in_body_before_set", step("  - name: a\n    request: { method: POST, path: /, json: { x: \"${tok}\" } }\n  - name: b\n    request: { method: GET, path: / }\n    capture: { tok: /t }\n"), "never captured")
case("unclosed_template", step("  - name: get\n    request: { method: GET, path: \"/w/${id\" }\n"), "unclosed")
case("bad_template_name", step("  - name: get\n    request: { method: GET, path: \"/w/${a b}\" }\n"), "not a template")
case("bad_env_name", step("  - name: get\n    request: { method: GET, path: \"/w/${env:}\" }\n"), "environment variable")
case("duplicate_step_names", step(BASE_STEP + BASE_STEP), "unique")
case("no_steps", scenario(workflow="  []\n").replace("workflow:\n  []", "workflow: []"), "no steps")
case("bad_method", step("  - name: get\n    request: { method: FETCH, path: / }\n"), "not a method")
case("path_without_slash", step("  - name: get\n    request: { method: GET, path: health }\n"), "start with `/`")
case("bad_header_name", step("  - name: get\n    request: { method: GET, path: /, headers: { \"bad header\": x } }\n"), "header name")
case("json_and_body", step("  - name: get\n    request: { method: POST, path: /, json: {a: 1}, body: x }\n"), "not both")
case("capture_bad_pointer", step("  - name: get\n    request: { method: GET, path: / }\n    capture: { id: id }\n"), "JSON pointer")
case("poll_bad_pointer", step("  - name: get\n    request: { method: GET, path: / }\n    poll: { until: { pointer: status, equals: done }, every: 1s, timeout: 2s }\n"), "JSON pointer")
case("capture_reserved_seq", step("  - name: get\n    request: { method: GET, path: / }\n    capture: { seq: /id }\n"), "reserved")
case("bad_scenario_name", scenario(name="'has spaces/and slash'"), "usable scenario name")
# faults
case("fault_without_action", fault("{ name: f, start: 0s, for: 1s }"), "needs `delay")
case("fault_zero_length", fault("{ name: f, start: 0s, for: 0s, abort: { percentage: 1, http_status: 503 } }"), "longer than 0s")
case("fault_after_schedule", fault("{ name: f, start: 10s, for: 1s, abort: { percentage: 1, http_status: 503 } }"), "already ended")
case("fault_bad_status", fault("{ name: f, start: 0s, for: 1s, abort: { percentage: 1, http_status: 42 } }"), "HTTP status")
case("fault_zero_delay", fault("{ name: f, start: 0s, for: 1s, delay: { percentage: 1, fixed_delay: 0s } }"), "longer than 0s")
case("duplicate_fault_names", scenario(faults="  - { name: f, start: 0s, for: 1s, abort: { percentage: 1, http_status: 503 } }\n  - { name: f, start: 1s, for: 1s, abort: { percentage: 1, http_status: 503 } }\n"), "unique")
case("prometheus_bad_url", scenario(extra="prometheus: { url: localhost:9090 }\n"), "not an http")

HERE.mkdir(parents=True, exist_ok=True)
for old in HERE.glob("*.yaml"):
    old.unlink()
for name, (text, expect) in cases.items():
    (HERE / f"{name}.yaml").write_text(f"# expect: {expect}\n{text}")
# Binary garbage and an oversized file are made by the test itself (not committed).
print(f"{len(cases)} cases written to {HERE}")
