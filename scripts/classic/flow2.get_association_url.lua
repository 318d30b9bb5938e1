-- OKE answers the start link as a bare JSON string.
local classic = require("classic")

function from_peer(msg, ctx)
  if ctx.status ~= 200 then return classic.problem(msg, ctx) end
  return msg.link
end
