-- bench/wrk/scanqa.lua: the requests of script/bench's scenarios, for wrk.
--
--   wrk -t T -c C -d D -s bench/wrk/scanqa.lua URL -- scenario=NAME threads=T key=value...
--
-- scenario  quick | sync | lookup | by_lp | session_patch | mix (see below)
-- threads   the -t given to wrk (each thread takes its own share of the ids)
-- orgs      organizations in the data set (bench/dataset.sql)
-- per_org   license plates and inspections per organization
-- base      first inspection index that no earlier run has completed
-- sessions  session_patch: "id:org,id:org,..." of sessions owned by org's inspector
-- mix       mix: the scenarios to take turns, "quick+lookup+..."
-- seed      random seed of the read scenarios
--
-- Consuming scenarios (quick, sync) never reuse an inspection: thread t (0-based)
-- of T takes the indexes base + t, base + t + T, base + t + 2T, ... of each
-- organization in turn, so no two requests of one run, and no two runs (script/bench
-- moves base past the highest completed index), touch the same row. The ids are
-- those of bench/dataset.sql.
--
-- done() prints one line, "BENCH_RESULT {json}", with the request count, the
-- duration, latency percentiles in microseconds, socket errors, the number of
-- non-2xx answers (and of syncs with failed actions) with a sample of the first
-- one, and next_base: the base for the next run, past every index this run took
-- (whether or not its request was answered before the run ended).

local threads = {}
local thread_no = 0

function setup(thread)
	thread:set("tid", thread_no)
	thread_no = thread_no + 1
	table.insert(threads, thread)
end

-- ---- per thread ---------------------------------------------------------------

local args = {}
local scenario, nthreads, orgs, per_org, base
local prefix = {}      -- organization k: its 8-digit id prefix
local auth = {}        -- organization k: request headers for its token
taken = {}             -- organization k: slots taken by this thread (a global, for done())
local org_turn = 0
local sent = 0
local sessions = {}    -- session_patch: {id, org} owned by this thread
local session_turn = 0
local mix = {}
local mix_turn = 0
local generators = {}

-- Globals, read by done() through thread:get().
non2xx = 0
exhausted = 0
sample = ""
base_index = 0

local function iso_utc(t)
	return os.date("!%Y-%m-%dT%H:%M:%S", t) .. ".000Z"
end

function init(argv)
	for _, a in ipairs(argv) do
		local k, v = a:match("^([%w_]+)=(.*)$")
		if k then
			args[k] = v
		end
	end
	scenario = args.scenario or "quick"
	nthreads = tonumber(args.threads or "1")
	orgs = tonumber(args.orgs or "1")
	per_org = tonumber(args.per_org or "1")
	base = tonumber(args.base or "0")
	base_index = base -- a global, for done()
	math.randomseed(tonumber(args.seed or "1") * 1000 + tid)
	for k = 1, orgs do
		prefix[k] = string.format("%08d", k)
		auth[k] = {
			["Authorization"] = "Bearer bench-org-" .. k,
			["Content-Type"] = "application/json",
		}
		taken[k] = 0
	end
	if args.sessions and args.sessions ~= "" then
		local all = {}
		for id, org in args.sessions:gmatch("(%d+):(%d+)") do
			table.insert(all, { id = id, org = tonumber(org) })
		end
		-- thread t owns sessions t, t + T, ...: no two threads change one session
		for i = tid + 1, #all, nthreads do
			table.insert(sessions, all[i])
		end
	end
	if scenario == "mix" then
		for name in (args.mix or "quick"):gmatch("[%w_]+") do
			table.insert(mix, name)
		end
	end
end

local function next_org()
	org_turn = org_turn % orgs + 1
	return org_turn
end

-- Takes n consecutive unused indexes of organization k for this thread; nil when
-- the data set has no more.
local function take(k, n)
	local first = taken[k]
	if base + (first + n - 1) * nthreads + tid >= per_org then
		return nil
	end
	taken[k] = first + n
	return first
end

local function index_of(slot)
	return base + slot * nthreads + tid
end

local function inspection_id(k, i)
	return string.format("%s-0001-4000-8000-%d", prefix[k], 100000000000 + i)
end

-- The data set has no unused inspection left for this thread: it stops, and its
-- last request is a harmless health check.
local function exhaust()
	exhausted = 1
	wrk.thread:stop()
	return wrk.format("GET", "/api/v1/health")
end

generators.quick = function()
	local k = next_org()
	local slot = take(k, 1)
	if not slot then
		return exhaust()
	end
	local i = index_of(slot)
	local body = string.format(
		'{"inspection_id":"%s","result":"%s","inspection_method":"scanner",' ..
		'"scanner_device_id":"BENCH-TC52-%03d"}',
		inspection_id(k, i), (i % 10 == 7) and "fail" or "pass", tid)
	return wrk.format("POST", "/api/v1/quality/scanner/quick-inspection", auth[k], body)
end

-- 50 quick inspections recorded offline over the last minutes, oldest first.
generators.sync = function()
	local k = next_org()
	local slot = take(k, 50)
	if not slot then
		return exhaust()
	end
	local now = os.time()
	local actions = {}
	for j = 0, 49 do
		local i = index_of(slot + j)
		actions[j + 1] = string.format(
			'{"id":"%s-0003-4000-8000-%d","type":"quick_inspection","timestamp":"%s",' ..
			'"payload":{"inspection_id":"%s","result":"%s","inspection_method":"scanner",' ..
			'"scanner_device_id":"BENCH-TC52-%03d"}}',
			prefix[k], 100000000000 + i, iso_utc(now - 300 + j), inspection_id(k, i),
			(i % 10 == 7) and "fail" or "pass", tid)
	end
	local body = '{"actions":[' .. table.concat(actions, ",") .. ']}'
	return wrk.format("POST", "/api/v1/quality/scanner/sync-offline", auth[k], body)
end

generators.lookup = function()
	local k = next_org()
	local i = math.random(0, per_org - 1)
	return wrk.format("GET", string.format("/api/warehouse/license-plates/barcode/%d%015d", k, i),
		auth[k])
end

generators.by_lp = function()
	local k = next_org()
	local i = math.random(0, per_org - 1)
	return wrk.format("GET", string.format("/api/quality/inspections/by-lp/%s-0002-4000-8000-%d",
		prefix[k], 100000000000 + i), auth[k])
end

-- A device reporting progress: the notes change on every request, so each PATCH
-- really updates the row (and writes its audit entry).
generators.session_patch = function()
	if #sessions == 0 then
		return exhaust()
	end
	session_turn = session_turn % #sessions + 1
	local s = sessions[session_turn]
	local body = string.format('{"notes":"bench thread %d request %d","location":"DOCK-%d"}',
		tid, sent, session_turn % 8)
	return wrk.format("PATCH", "/api/v1/scan-sessions/" .. s.id, auth[s.org], body)
end

generators.mix = function()
	mix_turn = mix_turn % #mix + 1
	return generators[mix[mix_turn]]()
end

function request()
	sent = sent + 1
	return generators[scenario]()
end

-- A sync answers 200 even when some of its actions failed ({"success":n,"failed":m,
-- ...}): such an answer counts as a failure too, since its actions were not all done.
function response(status, headers, body)
	local bad = status < 200 or status > 299
	if not bad and body and body:find('"failed":[1-9]') then
		bad = true
	end
	if bad then
		non2xx = non2xx + 1
		if sample == "" then
			sample = status .. " " .. string.sub(body or "", 1, 300)
		end
	end
end

-- ---- after the run ----------------------------------------------------------------

local function json_string(s)
	return '"' .. s:gsub('[%c"\\]', function(c)
		return string.format("\\u%04x", c:byte())
	end) .. '"'
end

function done(summary, latency, requests)
	local bad, out_of_ids, first, slots = 0, 0, "", 0
	local nt = #threads
	for _, t in ipairs(threads) do
		bad = bad + (t:get("non2xx") or 0)
		out_of_ids = out_of_ids + (t:get("exhausted") or 0)
		for _, n in pairs(t:get("taken") or {}) do
			slots = math.max(slots, n)
		end
		local s = t:get("sample") or ""
		if first == "" then
			first = s
		end
	end
	local e = summary.errors
	io.write(string.format(
		'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
		'"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d,"max":%d},' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_over_399":%d},' ..
		'"non2xx":%d,"exhausted_threads":%d,"next_base":%d,"first_non2xx":%s}\n',
		summary.requests, summary.duration, summary.bytes,
		latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9), latency.max,
		e.connect, e.read, e.write, e.timeout, e.status,
		bad, out_of_ids, (threads[1]:get("base_index") or 0) + slots * nt, json_string(first)))
end
