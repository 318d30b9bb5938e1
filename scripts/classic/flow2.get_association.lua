local classic = require("classic")

function from_peer(msg, ctx)
  if ctx.status ~= 200 then return classic.problem(msg, ctx) end
  return classic.association(msg)
end
