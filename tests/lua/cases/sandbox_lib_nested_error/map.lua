local classic = require("classic")
function to_peer(msg)
  classic.roles.student = "pwned"
end
