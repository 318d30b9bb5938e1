local classic = require("classic")
function to_peer(msg)
  local names = {}
  for k, v in pairs(string) do
    if type(v) == "function" then names[#names + 1] = k end
  end
  table.sort(names)
  msg.string_functions = #names
  msg.has_upper = string.upper("abc")
  msg.roles = classic.roles
  local roles = {}
  for k, v in pairs(classic.roles) do roles[#roles + 1] = k .. "=" .. v end
  table.sort(roles)
  msg.role_list = table.concat(roles, ",")
  msg.rawget = tostring(rawget(string, "upper"))
  return msg
end
