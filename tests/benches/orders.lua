-- wrk script for scripts/serve-wrk: POSTs unique ~0.7 KiB orders to the keep-up issue's `load` route.
-- Ids are "<run>-<thread>-<n>": `wrk ... -- RUN` names the run, so no two runs share an id.
local threads = 0
function setup(thread)
  thread:set("tid", tostring(threads))
  threads = threads + 1
end

local prefix, counter = "", 0
function init(args)
  prefix = (args[1] or "run") .. "-" .. tid
end

local note = string.rep("x", 600)
function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  local body = '{"id":"' .. id .. '","event":"order.updated","order":{"id":"' .. id
    .. '","v":1,"total":12.5,"items":[{"sku":"A-1","qty":2,"price":4.0},{"sku":"B-7","qty":1,"price":4.5}],"note":"'
    .. note .. '"}}'
  return wrk.format("POST", "/hooks/load", { ["Content-Type"] = "application/json" }, body)
end
