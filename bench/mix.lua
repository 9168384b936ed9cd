-- The browser mix: an app request stream with the dashboard open beside it. Every (every+1)th
-- request of a wrk thread is the API request; all go out on the same keep-alive connections with
-- the same headers (-H, e.g. the session cookie a browser sends on every request).
--   wrk -s bench/mix.lua http://host:port -- /app/static/1k /api/instances 20

local app_request, api_request, every
local sent = 0

function init(args)
  app_request = wrk.format("GET", args[1])
  api_request = wrk.format("GET", args[2])
  every = tonumber(args[3])
end

function request()
  sent = sent + 1
  if sent % (every + 1) == 0 then
    return api_request
  end
  return app_request
end
