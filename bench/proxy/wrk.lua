-- wrk script for bench/proxy/run.py: the method and body (JSON, or N bytes) come from the
-- environment, and
-- done() prints one JSON line with counts, errors and latency percentiles (microseconds).
local method = os.getenv("WRK_METHOD") or "GET"
local body_bytes = tonumber(os.getenv("WRK_BODY_BYTES") or "0")
local body = os.getenv("WRK_BODY") or ""
wrk.method = method
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["A2A-Version"] = "1.0"
elseif body_bytes > 0 then
  wrk.body = string.rep("x", body_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
