import type { AnyRoute } from '../http/route.ts';
import { deviceRoutes } from './devices.ts';
import { docsRoutes } from './docs.ts';
import { fileRoutes } from './files.ts';
import { groupMemberRoutes } from './group-members.ts';
import { groupRoutes } from './groups.ts';
import { messageChangeRoutes } from './message-changes.ts';
import { messageRoutes } from './messages.ts';
import { sessionRoutes } from './sessions.ts';
import { streamRoutes } from './stream.ts';
import { systemRoutes } from './system.ts';
import { userRoutes } from './users.ts';

/** Every HTTP route the listener serves; also the source of the OpenAPI document. */
export const routes: AnyRoute[] = [
  ...systemRoutes,
  ...userRoutes,
  ...sessionRoutes,
  ...deviceRoutes,
  ...messageRoutes,
  ...messageChangeRoutes,
  ...groupRoutes,
  ...groupMemberRoutes,
  ...fileRoutes,
  ...streamRoutes,
  ...docsRoutes(() => routes),
];
