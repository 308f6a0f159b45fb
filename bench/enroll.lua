-- wrk script for `npm run bench`: POSTs EST simpleenroll bodies in turn and
-- counts every answer that is not 200 (wrk's own "Non-2xx or 3xx" line lets
-- 3xx through, and a 3xx is no enrollment either).
-- args: BODIES_FILE THREADS; env ESTGW_BENCH_AUTHORIZATION: the Authorization header.

local threads = {}
local created = 0

-- main state: keep each thread to read its counters in done()
function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

-- thread state
local requests = {}
local idx = 1
non200 = 0
first_bad = nil

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local text = f:read("*a")
  f:close()
  local headers = {
    ["Authorization"] = os.getenv("ESTGW_BENCH_AUTHORIZATION"),
    ["Content-Type"] = "application/pkcs10",
  }
  -- bodies end in LF and are separated by one empty line
  local pos = 1
  while pos <= #text do
    local s, e = string.find(text, "\n\n", pos, true)
    local body = s and string.sub(text, pos, s) or string.sub(text, pos)
    -- formatted once here so request() costs nothing but a table lookup
    if #body > 1 then table.insert(requests, wrk.format("POST", nil, headers, body)) end
    if not s then break end
    pos = e + 1
  end
  assert(#requests > 0, "no CSR bodies in " .. args[1])
  -- threads start apart so they do not send the same CSR at the same moment
  local nthreads = tonumber(args[2]) or 1
  idx = (id * math.floor(#requests / nthreads)) % #requests + 1
end

function request()
  local r = requests[idx]
  idx = idx % #requests + 1
  return r
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == nil then
      first_bad = status .. " " .. string.gsub(string.sub(body or "", 1, 160), "[%c]", " ")
    end
  end
end

-- one line the TypeScript side parses; latencies in microseconds
function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non200") or 0)
    local fb = t:get("first_bad")
    if fb and first == "" then first = fb end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%.0f duration_us=%.0f non200=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f status=%.0f first_bad=%s\n",
    summary.requests, summary.duration, bad, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status, first))
end
