import type { AdminServiceImplementation } from '../../gen/redlease/v1/admin.js';
import type { Coordinator } from '../coordinator/index.js';
import { nodeToProto } from '../edge/convert.js';
import { modeFromProto, modeToProto } from './convert.js';

/** AdminService: mode and node status. Access rules live in the authentication middleware. */
export function adminService(coordinator: Coordinator): AdminServiceImplementation {
  return {
    async getMode() {
      return { mode: modeToProto(coordinator.getMode()) };
    },

    async setMode(request) {
      const switched = await coordinator.setMode(modeFromProto(request.mode), request.force);
      return { mode: modeToProto(switched.mode), leasesEnded: switched.leasesEnded };
    },

    async listNodes() {
      const status = coordinator.status();
      return {
        nodes: status.nodes.map(nodeToProto),
        quorum: status.quorum,
        quorumAvailable: status.quorumAvailable,
        mode: modeToProto(status.mode),
      };
    },
  };
}
