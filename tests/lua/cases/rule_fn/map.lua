local oke = require("oke")
local rules = oke.rules {
  -- OKE: 10000 or more is unlimited extra time; this supplier writes -1
  { path = "consumers.nl-test-admin.additionalTimeInMin",
    fn = function(value) if value and value >= 10000 then return -1 end end },
  { path = "person.displayName", fn = function() return oke.remove end },
  { path = "source", fn = function(value, msg, ctx)
      return ctx.connector .. "/" .. ctx.interaction .. "/" .. ctx.direction .. "/" .. ctx.phase
    end },
  { fn = function(msg) return { wrapped = msg } end }, -- no path: the whole message
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end
