local oke = require("oke")
function to_peer(msg, ctx)
  return {
    made = oke.lts("Rekenen 3F"),
    english = oke.lts("Maths", "en-GB"),
    value = oke.lts_value(msg.name),
    value_en = oke.lts_value(msg.name, "en-GB"),
    plain = oke.lts_value("al tekst"),
    none = oke.lts_value(json.array()) == nil,
  }
end
